using EdgeTune.Adapters;
using EdgeTune.Models;

namespace EdgeTune.Generation;

/// <summary>
/// One base model shared by concurrent generations, with named LoRA adapters chosen per generation.
/// <see cref="Select"/> returns a lightweight <see cref="ICausalLM"/> view bound to one adapter (or to none: the
/// base model). Each view's <see cref="ICausalLM.Forward"/> runs under one lock that also switches the adapters so
/// that exactly the chosen one is enabled; KV caches are per generation, so generations that run at the same time
/// interleave token by token (one forward pass at a time; the model's scratch buffers and the adapters' enabled
/// flags are shared state, so passes cannot overlap).
/// </summary>
/// <remarks>Adapters must be applied to this model and unmerged (a merged adapter cannot be switched off), and must
/// not replace the embedding or output head (PEFT modules_to_save), which would change the base model for every
/// request. While this object is in use, nothing else should run the model or toggle the adapters.</remarks>
public sealed class AdapterSwitchingModel
{
    private readonly Lock _gate = new();
    private readonly ICausalLM _model;
    private readonly Dictionary<string, LoraAdapter> _adapters = new(StringComparer.Ordinal);
    private LoraAdapter? _active;

    /// <exception cref="ArgumentException">an adapter belongs to another model, is merged, replaces embeddings,
    /// or two adapters share a name.</exception>
    public AdapterSwitchingModel(ICausalLM model, IEnumerable<LoraAdapter>? adapters = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        foreach (var a in adapters ?? [])
        {
            if (!ReferenceEquals(a.Model, model))
                throw new ArgumentException($"adapter '{a.Name}' is applied to another model", nameof(adapters));
            if (a.IsMerged)
                throw new ArgumentException($"adapter '{a.Name}' is merged into the base weights; per-request adapters must stay unmerged", nameof(adapters));
            if (a.SavedModules.Count > 0)
                throw new ArgumentException($"adapter '{a.Name}' replaces {string.Join(", ", a.SavedModules)}; such adapters cannot be switched per request", nameof(adapters));
            if (!_adapters.TryAdd(a.Name, a))
                throw new ArgumentException($"two adapters are named '{a.Name}'", nameof(adapters));
        }
        foreach (var a in _adapters.Values) a.Enabled = false;
    }

    /// <summary>The base model.</summary>
    public ICausalLM Model => _model;

    /// <summary>The adapter names, in the order given.</summary>
    public IReadOnlyList<string> AdapterNames => [.. _adapters.Keys];

    public bool HasAdapter(string name) => _adapters.ContainsKey(name);

    /// <summary>A view that runs the base model with only <paramref name="adapter"/> enabled (null: none).</summary>
    /// <exception cref="KeyNotFoundException">no adapter has that name.</exception>
    public ICausalLM Select(string? adapter)
    {
        if (adapter is null) return new View(this, null);
        return _adapters.TryGetValue(adapter, out var a)
            ? new View(this, a)
            : throw new KeyNotFoundException($"no adapter named '{adapter}' (known: {string.Join(", ", _adapters.Keys)})");
    }

    private void Forward(LoraAdapter? adapter, ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_active, adapter))
            {
                _active?.Enabled = false;
                adapter?.Enabled = true;
                _active = adapter;
            }
            _model.Forward(tokens, cache, logits);
        }
    }

    private sealed class View(AdapterSwitchingModel owner, LoraAdapter? adapter) : ICausalLM
    {
        public int VocabSize => owner._model.VocabSize;
        public int MaxPositions => owner._model.MaxPositions;
        public KvCache CreateCache(int capacity) => owner._model.CreateCache(capacity);
        public void Forward(ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits) => owner.Forward(adapter, tokens, cache, logits);

        /// <summary>A view owns nothing; the base model stays with its owner.</summary>
        public void Dispose() { }
    }
}
