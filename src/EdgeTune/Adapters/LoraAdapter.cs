using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// One named LoRA (or DoRA) adapter applied to a model (a <see cref="DecoderModel"/> or a
/// <see cref="Models.Bert.BertEncoder"/>) by <see cref="LoraInjector"/>: its
/// modules, one per adapted projection, and their parameters under PEFT names (what a trainer optimizes and
/// <see cref="AdapterFiles"/> saves). Merge folds the update into the base weights and puts plain
/// <see cref="Linear"/> layers back into the model; Unmerge undoes it; Remove takes the adapter off the model.
/// An adapter loaded from PEFT files may also bring full weights for the embedding and output head (PEFT's
/// <c>modules_to_save</c>, <see cref="SavedModules"/>): they replace the model's own until Remove.
/// </summary>
public sealed class LoraAdapter : IDisposable
{
    private readonly List<Entry> _entries;
    private readonly List<string> _savedModules = [];
    private readonly List<Parameter> _replacedOriginals = [];
    private IEmbedding? _originalEmbedding;
    private IOutputHead? _originalHead;
    private bool _removed;

    private sealed record Entry(string Path, LoraLinear Layer, LoraModule Module);

    private readonly IModule _root;
    private readonly ParameterCollection _modelParameters;

    internal LoraAdapter(string name, LoraConfig config, IModule root, ParameterCollection modelParameters,
        IEnumerable<(string Path, LoraLinear Lora, LoraModule Module)> entries)
    {
        Name = name;
        Config = config;
        _root = root;
        _modelParameters = modelParameters;
        _entries = entries.Select(e => new Entry(e.Path, e.Lora, e.Module)).ToList();
        Parameters = new ParameterCollection(_entries.SelectMany(e => e.Module.Parameters));
    }

    /// <summary>The adapter name ("default" unless given): several adapters may share a model.</summary>
    public string Name { get; }

    public LoraConfig Config { get; }

    /// <summary>The decoder the adapter is applied to.</summary>
    /// <exception cref="InvalidOperationException">The adapter is on another kind of model (see <see cref="Root"/>).</exception>
    public DecoderModel Model => _root as DecoderModel
        ?? throw new InvalidOperationException($"LoRA adapter '{Name}' is applied to a {_root.GetType().Name}, not a decoder");

    /// <summary>The module tree the adapter's layers were swapped into (the model).</summary>
    public IModule Root => _root;

    /// <summary>The wrapped layers, in model order (layer by layer: q, k, v, o, gate, up, down).</summary>
    public IReadOnlyList<LoraLinear> Layers => _entries.Select(e => e.Layer).ToList();

    /// <summary>This adapter's module on each wrapped layer, in the order of <see cref="Layers"/>.</summary>
    public IReadOnlyList<LoraModule> Modules => _entries.Select(e => e.Module).ToList();

    /// <summary>A, B (and DoRA m) of every module under PEFT's saved names
    /// (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>, …), trainable.</summary>
    public ParameterCollection Parameters { get; }

    /// <summary>HF module names ("model.embed_tokens", "lm_head") whose full weights this adapter put in place of the
    /// model's (PEFT <c>modules_to_save</c>); empty for plain LoRA. Their weights are the model's parameters of those names.</summary>
    public IReadOnlyList<string> SavedModules => _savedModules;

    /// <summary>Σ r·(in + out) over the adapted layers (+ out per layer for DoRA).</summary>
    public long ParameterCount => Parameters.ElementCount;

    /// <summary>Whether the adapter's modules contribute (setting it enables or disables them all).</summary>
    public bool Enabled
    {
        get => _entries.All(e => e.Module.Enabled);
        set { foreach (var e in _entries) e.Module.Enabled = value; }
    }

    public bool IsMerged => _entries.Count > 0 && _entries.All(e => e.Module.Merged);

    /// <summary>
    /// Folds s·B·A (DoRA: m ⊙ (W + s·B·A)/‖·‖_row) into every adapted F32 base weight and, where no other
    /// unmerged module remains on a layer, puts the plain base <see cref="Linear"/> back into the model; returns
    /// those base layers. A memory-mapped (read-only) weight is copied first and the copy replaces it in
    /// <see cref="DecoderModel.Parameters"/>, so exports of the model carry the merged weights.
    /// </summary>
    /// <exception cref="InvalidOperationException">A base weight is not F32 (the message names the layer).</exception>
    public IReadOnlyList<ILinear> Merge()
    {
        ThrowIfRemoved();
        foreach (var e in _entries) // check every layer first, so a refusal leaves nothing half-merged
            if (!e.Module.Merged) e.Layer.CheckMergeable(e.Module);
        var merged = new List<ILinear>();
        foreach (var e in _entries)
        {
            e.Layer.Merge(e.Module, _modelParameters);
            if (e.Layer.Modules.All(m => m.Merged)) ModuleTree.Replace(_root, e.Path, e.Layer.Base);
            merged.Add(e.Layer.Base);
        }
        return merged;
    }

    /// <summary>Takes the update back out of the base weights (equal to before within float rounding) and puts
    /// the adapter layers back into the model.</summary>
    public void Unmerge()
    {
        ThrowIfRemoved();
        foreach (var e in _entries)
        {
            ModuleTree.Replace(_root, e.Path, e.Layer);
            e.Layer.Unmerge(e.Module);
        }
    }

    /// <summary>Takes the adapter off the model (unmerging it first when merged): layers left without modules
    /// get their base back, replaced embedding/head weights (<see cref="SavedModules"/>) their originals. The adapter's
    /// parameters are disposed.</summary>
    public void Remove()
    {
        if (_removed) return;
        Unmerge();
        foreach (var e in _entries)
        {
            e.Layer.Remove(e.Module.AdapterName);
            if (e.Layer.Modules.Count == 0) ModuleTree.Replace(_root, e.Path, e.Layer.Base);
        }
        if (_originalEmbedding is not null)
        {
            foreach (var p in _replacedOriginals) Model.Parameters.Replace(p).Dispose();
            Model.SetEmbedding(_originalEmbedding, _originalHead);
            _replacedOriginals.Clear();
            _savedModules.Clear();
        }
        _removed = true;
        Parameters.Dispose();
    }

    /// <summary>Puts full F32 weights in place of the model's embedding table and/or output head (the adapter owns
    /// <paramref name="embed"/> and <paramref name="head"/> from here on). A tied model takes one table for both,
    /// listed under both names.</summary>
    internal void ReplaceEmbeddings(Tensor? embed, Tensor? head)
    {
        ThrowIfRemoved();
        if (embed is null && head is null) return;
        if (_originalEmbedding is not null) throw new InvalidOperationException($"LoRA adapter '{Name}' already replaced the model's embedding/head weights");
        var m = Model;
        _originalEmbedding = m.Embedding;
        _originalHead = m.Head;
        if (m.TiedHead)
        {
            var p = new Parameter(DecoderModel.Names.Embed, (embed ?? head)!, trainable: false);
            if (embed is not null && head is not null) head.Dispose();
            _replacedOriginals.Add(m.Parameters.Replace(p));
            m.SetEmbedding(new TokenEmbedding(DecoderModel.Names.EmbedModule, p));
            _savedModules.AddRange([DecoderModel.Names.EmbedModule, "lm_head"]);
            return;
        }
        IEmbedding embedding = m.Embedding;
        IOutputHead? newHead = null;
        if (embed is not null)
        {
            var p = new Parameter(DecoderModel.Names.Embed, embed, trainable: false);
            _replacedOriginals.Add(m.Parameters.Replace(p));
            embedding = new TokenEmbedding(DecoderModel.Names.EmbedModule, p);
            _savedModules.Add(DecoderModel.Names.EmbedModule);
        }
        if (head is not null)
        {
            var p = new Parameter(DecoderModel.Names.LmHead, head, trainable: false);
            _replacedOriginals.Add(m.Parameters.Replace(p));
            newHead = new LinearHead("lm_head", p);
            _savedModules.Add("lm_head");
        }
        m.SetEmbedding(embedding, newHead);
    }

    private void ThrowIfRemoved()
    {
        if (_removed) throw new InvalidOperationException($"LoRA adapter '{Name}' was removed from its model");
    }

    /// <summary>Frees the adapter's parameters (without touching the model; call <see cref="Remove"/> for that). Replaced
    /// embedding/head weights stay in the model (which owns them); the originals they replaced are freed.</summary>
    public void Dispose()
    {
        if (_removed) return;
        _removed = true;
        Parameters.Dispose();
        foreach (var p in _replacedOriginals) p.Dispose();
        _replacedOriginals.Clear();
    }
}
