using EdgeTune.Autograd;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Generation;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>
/// A decoder-only language model of any registered family, as a module tree with Hugging Face paths:
/// <c>model.embed_tokens</c> (an <see cref="IEmbedding"/>), <c>model.layers.N</c> (the family's
/// <see cref="DecoderLayer"/>, its projections replaceable by path), <c>model.norm</c> and <c>lm_head</c>
/// (an <see cref="IOutputHead"/>, over the embedding's table when tied). The family's block is the only
/// definition of the network: <see cref="Forward"/> (KV cache), <see cref="Loss"/> (tape) and the memory
/// planner all run it.
/// </summary>
public sealed partial class DecoderModel : Module, ICausalLM, IDecoderContext
{
    private readonly IDisposable? _owner;
    private readonly RopeTable?[] _rope = new RopeTable?[2];
    private readonly Parameter _finalNorm;

    private DecoderModel(DecoderFamily family, HfConfig config, RopeStyle ropeStyle, ParameterCollection parameters, IDisposable? owner,
        IReadOnlyDictionary<string, QuantFormat>? quantized = null)
    {
        Family = family;
        Config = config;
        EmbeddingScale = family.EmbeddingScale(config);
        FinalLogitSoftcap = family.FinalLogitSoftcap(config);
        MaxPositions = family.MaxPositions(config);
        RopeStyle = ropeStyle;
        Parameters = parameters;
        _owner = owner;
        var inner = Add("model", new Module());
        var embed = parameters[Names.Embed];
        IEmbedding embedding = quantized is not null && quantized.TryGetValue(Names.Embed, out var ef)
            ? QuantizedEmbedding.Over(Names.EmbedModule, embed, ef, config.VocabSize, config.HiddenSize)
            : new TokenEmbedding(Names.EmbedModule, embed);
        inner.Add("embed_tokens", embedding);
        var layers = inner.Add("layers", new Module());
        var binder = new ParameterBinder(parameters, (name, outF, inF, w, b) =>
            quantized is not null && quantized.TryGetValue(name + ".weight", out var format)
                ? new QuantizedLinear(name, format, outF, inF, w, b)
                : new Linear(name, w, b));
        var list = new DecoderLayer[config.NumHiddenLayers];
        for (int i = 0; i < list.Length; i++) list[i] = layers.Add<DecoderLayer>(i.ToString(System.Globalization.CultureInfo.InvariantCulture), family.CreateLayer(this, binder, i));
        Layers = list;
        _finalNorm = inner.AddParameter("norm.weight", parameters[Names.FinalNorm]);
        IOutputHead head;
        if (!parameters.TryGet(Names.LmHead, out var headWeight)) head = embedding as IOutputHead ?? new LinearHead(Names.EmbedModule, embed);
        else if (quantized is not null && quantized.TryGetValue(Names.LmHead, out var hf))
            head = QuantizedEmbedding.Over("lm_head", headWeight!, hf, config.VocabSize, config.HiddenSize);
        else head = new LinearHead("lm_head", headWeight!);
        Add("lm_head", head);
    }

    /// <summary>HF names shared by every family.</summary>
    public static class Names
    {
        public const string EmbedModule = "model.embed_tokens";
        public const string Embed = "model.embed_tokens.weight";
        public const string FinalNorm = "model.norm.weight";
        public const string LmHead = "lm_head.weight";
    }

    public DecoderFamily Family { get; }

    /// <summary>The family's factor on embedding rows for this config (read once).</summary>
    public double EmbeddingScale { get; }

    /// <summary>The family's final logit soft-cap for this config, or null (read once).</summary>
    public double? FinalLogitSoftcap { get; }
    public HfConfig Config { get; }

    /// <summary>How the q/k projection rows pair channels for RoPE (follows the checkpoint's layout).</summary>
    public RopeStyle RopeStyle { get; }

    /// <summary>The model's own weights by HF name (adapters keep theirs apart).</summary>
    public new ParameterCollection Parameters { get; }

    /// <summary>The decoder blocks, in order (also the children of <c>model.layers</c>).</summary>
    public IReadOnlyList<DecoderLayer> Layers { get; }

    public IEmbedding Embedding => Get<Module>("model").Get<IEmbedding>("embed_tokens");
    public IOutputHead Head => Get<IOutputHead>("lm_head");

    /// <summary>The parameter that stores the token embedding (float values or quantized bytes).</summary>
    public Parameter Embed => Embedding.Weight;
    public Parameter FinalNorm => _finalNorm;
    /// <summary>The parameter that stores the output head; the same as <see cref="Embed"/> when tied.</summary>
    public Parameter LmHead => Head.Weight;

    public int VocabSize => Config.VocabSize;
    public int MaxPositions { get; }
    public bool TiedHead => ReferenceEquals(LmHead, Embed);

    /// <summary>Every HF tensor name and shape a config implies, in a fixed order, from the family's block definition.</summary>
    public static IEnumerable<(string Name, int[] Shape)> ExpectedTensors(HfConfig c)
    {
        var family = ModelRegistry.Family(c.ModelType);
        using var rec = WeightBinder.Recording();
        var ctx = new ShapeContext(c);
        var list = new List<(string, int[])> { (Names.Embed, [c.VocabSize, c.HiddenSize]) };
        for (int i = 0; i < c.NumHiddenLayers; i++) family.CreateLayer(ctx, rec, i);
        list.AddRange(rec.Tensors);
        list.Add((Names.FinalNorm, [c.HiddenSize]));
        if (!c.TieWordEmbeddings) list.Add((Names.LmHead, [c.VocabSize, c.HiddenSize]));
        return list;
    }

    /// <summary>Runs <paramref name="use"/> over the family's layers built on shape-only weights (what the memory
    /// planner runs), then frees them.</summary>
    public static T WithShapeLayers<T>(HfConfig c, Func<IReadOnlyList<DecoderLayer>, T> use)
    {
        var family = ModelRegistry.Family(c.ModelType);
        using var rec = WeightBinder.Recording();
        var ctx = new ShapeContext(c);
        return use(Enumerable.Range(0, c.NumHiddenLayers).Select(i => family.CreateLayer(ctx, rec, i)).ToList());
    }

    private sealed class ShapeContext(HfConfig config) : IDecoderContext
    {
        private RopeTable? _table;
        public HfConfig Config { get; } = config;
        public RopeStyle RopeStyle => RopeStyle.HalfSplit;
        public RopeTable Rope(int kind, int positions) => _table ??= new RopeTable(1, [1.0]);
    }

    /// <summary>Every projection (<see cref="ILinear"/>) of the blocks with its path, in model order (layer by layer, in
    /// each block's child order): what adapters, quantization, QAT, pruning and calibration traverse.</summary>
    public IEnumerable<(string Path, ILinear Layer)> Projections() => ModuleTree.All<ILinear>(this);

    /// <summary>Puts <paramref name="layer"/> at the projection path <paramref name="path"/>; returns what was there.</summary>
    public ILinear SetProjection(string path, ILinear layer) => (ILinear)ModuleTree.Replace(this, path, layer);

    /// <summary>Replaces the embedding module and, when the head is tied (or <paramref name="head"/> is given), the head.</summary>
    public void SetEmbedding(IEmbedding embedding, IOutputHead? head = null)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        bool tied = TiedHead;
        Get<Module>("model").SetChild("embed_tokens", embedding);
        if (head is not null) SetChild("lm_head", head);
        else if (tied) SetChild("lm_head", embedding as IOutputHead ?? new LinearHead(Names.EmbedModule, embedding.Weight));
    }

    /// <summary>True for 2-D weights inside the decoder blocks (projections: what a quantized model keeps quantized).</summary>
    public static bool IsProjection(string hfName) =>
        hfName.StartsWith("model.layers.", StringComparison.Ordinal) && hfName.EndsWith("_proj.weight", StringComparison.Ordinal);

    /// <summary>The rotary table of <paramref name="kind"/>, grown to cover <paramref name="positions"/>.</summary>
    public RopeTable Rope(int kind, int positions)
    {
        if (_rope[kind] is { } r && r.MaxPositions >= positions) return r;
        int size = Math.Max(positions, Math.Min(2 * (_rope[kind]?.MaxPositions ?? 0), MaxPositions));
        size = Math.Max(size, Math.Min(256, MaxPositions));
        var (freq, factor) = Family.Rope(Config, kind);
        return _rope[kind] = new RopeTable(size, freq, factor);
    }

    public KvCache CreateCache(int capacity)
    {
        if (capacity > MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"the model supports at most {MaxPositions} positions" +
                (MaxPositions < Config.MaxPositionEmbeddings ? $" here (max_position_embeddings is {Config.MaxPositionEmbeddings}, but its {Config.RopeScaling?.RopeType} rope beyond {MaxPositions} is not implemented)" : ""));
        return new KvCache(Config.NumHiddenLayers, capacity, Config.NumKeyValueHeads, Config.HeadDim);
    }

    public void Dispose()
    {
        Parameters.Dispose();
        _owner?.Dispose();
    }
}
