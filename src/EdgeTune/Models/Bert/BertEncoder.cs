using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// A BERT encoder (post-norm blocks: self-attention with a padding mask, residual + LayerNorm, erf-GELU feed-forward,
/// residual + LayerNorm) as a module tree with one forward on the <see cref="Tape"/>: <see cref="Hidden"/> is what
/// training records and what inference (<see cref="LastHiddenState"/>, <see cref="SentenceEmbeddings"/>) runs on
/// non-recording tapes (one per block, freed as it goes), so adapters, full fine-tuning and inference share a single
/// definition.
/// <see cref="SentenceEmbeddings"/> adds the sentence-transformers head: mean pooling over the attention mask (or the
/// [CLS] token, <see cref="Pooling"/>), then L2 normalisation.
/// </summary>
/// <remarks>
/// Parameters use the transformers names without the <c>bert.</c> prefix (<c>embeddings.word_embeddings.weight</c>,
/// <c>encoder.layer.{i}.attention.self.query.weight</c>, …); linear weights are [out, in] like PyTorch's. Module paths
/// follow the same names (<c>encoder.layer.3.attention.self.query</c>), so LoRA targets <c>query</c>, <c>key</c>,
/// <c>value</c>, <c>dense</c> by short name. F64 parameters (<see cref="CreateRandom"/>) run the double-precision
/// references for gradient checks.
/// </remarks>
public sealed class BertEncoder : Module, IDisposable
{
    private readonly Parameter _word, _position, _tokenType, _embLnW, _embLnB;

    public BertConfig Config { get; }

    /// <summary>The encoder's own weights by transformers name (adapters keep theirs apart).</summary>
    public new ParameterCollection Parameters { get; }

    /// <summary>The blocks, in order (also the children of <c>encoder.layer</c>).</summary>
    public IReadOnlyList<BertLayer> Layers { get; }

    /// <summary>Builds the encoder from named float parameters (see remarks), copied into trainable-capable F32 tensors;
    /// shapes are checked against <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">A parameter is missing or has the wrong size.</exception>
    public BertEncoder(BertConfig config, IReadOnlyDictionary<string, float[]> parameters)
        : this(config, FromArrays(config, parameters)) { }

    private BertEncoder(BertConfig config, ParameterCollection parameters)
    {
        Config = config;
        Parameters = parameters;
        var embeddings = Add("embeddings", new Module());
        _word = embeddings.AddParameter("word_embeddings.weight", parameters[Names.Word]);
        _position = embeddings.AddParameter("position_embeddings.weight", parameters[Names.Position]);
        _tokenType = embeddings.AddParameter("token_type_embeddings.weight", parameters[Names.TokenType]);
        _embLnW = embeddings.AddParameter("LayerNorm.weight", parameters[Names.LayerNormWeight]);
        _embLnB = embeddings.AddParameter("LayerNorm.bias", parameters[Names.LayerNormBias]);
        var layers = Add("encoder", new Module()).Add("layer", new Module());
        var binder = new ParameterBinder(parameters, (name, _, _, w, b) => new Nn.Linear(name, w, b));
        var list = new BertLayer[config.Layers];
        for (int i = 0; i < list.Length; i++)
            list[i] = layers.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture), new BertLayer(config, binder, i));
        Layers = list;
    }

    /// <summary>Names of the embedding tensors.</summary>
    public static class Names
    {
        public const string Word = "embeddings.word_embeddings.weight";
        public const string Position = "embeddings.position_embeddings.weight";
        public const string TokenType = "embeddings.token_type_embeddings.weight";
        public const string LayerNormWeight = "embeddings.LayerNorm.weight";
        public const string LayerNormBias = "embeddings.LayerNorm.bias";
    }

    /// <summary>Every tensor name and shape a config implies, in a fixed order, from the block definition itself.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> ExpectedTensors(BertConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        int h = config.HiddenSize;
        var list = new List<(string, int[])>
        {
            (Names.Word, [config.VocabSize, h]), (Names.Position, [config.MaxPositions, h]), (Names.TokenType, [config.TypeVocabSize, h]),
            (Names.LayerNormWeight, [h]), (Names.LayerNormBias, [h]),
        };
        using var rec = WeightBinder.Recording();
        for (int i = 0; i < config.Layers; i++) _ = new BertLayer(config, rec, i);
        list.AddRange(rec.Tensors);
        return list;
    }

    /// <summary>Runs <paramref name="use"/> over the config's blocks built shape-only (projections without weights): what
    /// the memory planner runs <see cref="BertLayer.Forward{TX}"/> over.</summary>
    internal static T WithShapeLayers<T>(BertConfig config, Func<IReadOnlyList<BertLayer>, T> use)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        using var rec = WeightBinder.Recording();
        return use(Enumerable.Range(0, config.Layers).Select(i => new BertLayer(config, rec, i)).ToList());
    }

    /// <summary>An encoder over <paramref name="parameters"/> (every <see cref="ExpectedTensors"/> name with its shape, F32
    /// or F64); the encoder takes ownership of them.</summary>
    /// <exception cref="ArgumentException">A tensor is missing or has the wrong shape.</exception>
    public static BertEncoder FromParameters(BertConfig config, ParameterCollection parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var (name, shape) in ExpectedTensors(config))
        {
            if (!parameters.TryGet(name, out var p)) throw new ArgumentException($"BERT parameter '{name}' is missing");
            if (!p.Value.Shape.SequenceEqual(shape))
                throw new ArgumentException($"BERT parameter '{name}' is {p.Value.ShapeString}; the config needs {ShapeException.Format(shape)}");
        }
        return new BertEncoder(config, parameters);
    }

    /// <summary>Random weights of the config's shapes: N(0, std) matrices and embeddings, unit LayerNorm weights, zero biases.
    /// <paramref name="dtype"/> F64 gives an encoder for gradient checks.</summary>
    public static BertEncoder CreateRandom(BertConfig config, ulong seed, float std = 0.02f, bool trainable = false, DType dtype = DType.F32)
    {
        return new BertEncoder(config, Internal.RandomWeights.Create(ExpectedTensors(config), seed, std, trainable, dtype));
    }

    private static ParameterCollection FromArrays(BertConfig config, IReadOnlyDictionary<string, float[]> parameters)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        var result = new ParameterCollection();
        try
        {
            foreach (var (name, shape) in ExpectedTensors(config))
            {
                long size = shape.Aggregate(1L, (a, d) => a * d);
                if (!parameters.TryGetValue(name, out var p)) throw new ArgumentException($"BERT parameter '{name}' is missing");
                if (p.Length != size) throw new ArgumentException($"BERT parameter '{name}' has {p.Length} values; the config needs {size}");
                result.Add(new Parameter(name, Tensor.From<float>(p, shape, name), trainable: false));
            }
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Every projection of the blocks with its module path, in model order (what adapters traverse).</summary>
    public IEnumerable<(string Path, ILinear Layer)> Projections() => ModuleTree.All<ILinear>(this);

    /// <summary>Puts <paramref name="layer"/> at the projection path <paramref name="path"/>; returns what was there.</summary>
    public ILinear SetProjection(string path, ILinear layer) => (ILinear)ModuleTree.Replace(this, path, layer);

    /// <summary>The parameters' element type: F32, or F64 for gradient checks.</summary>
    public DType DType => _word.Value.DType;

    /// <summary>
    /// The forward: the last hidden state (B·T, C) of <paramref name="batch"/>, recorded on <paramref name="tape"/>
    /// (padded positions included; keys where the attention mask is 0 get no weight).
    /// </summary>
    /// <exception cref="ArgumentException">The batch is malformed, too long, or holds an id outside the vocabulary or token types.</exception>
    public Variable Hidden(Tape tape, BertBatch batch)
    {
        var x = Embeddings(tape, batch);
        foreach (var layer in Layers) x = layer.Forward(tape, x, batch.AttentionMask, batch.Batch, batch.Length);
        return x;
    }

    /// <summary>Embedding sum and its LayerNorm (B·T, C): the input of the first block.</summary>
    private Variable Embeddings(Tape tape, BertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(batch);
        batch.Validate();
        var c = Config;
        int t = batch.Length, rows = batch.Batch * t;
        if (t > c.MaxPositions) throw new ArgumentException($"sequence length {t} exceeds the {c.MaxPositions} positions of the model");
        var positions = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            positions[r] = r % t;
            if ((uint)batch.InputIds[r] >= (uint)c.VocabSize) throw new ArgumentException($"token id {batch.InputIds[r]} at row {r} is outside the vocabulary of {c.VocabSize}");
            if ((uint)batch.TokenTypeIds[r] >= (uint)c.TypeVocabSize) throw new ArgumentException($"token type {batch.TokenTypeIds[r]} at row {r} is outside the {c.TypeVocabSize} types");
        }
        var x = tape.Add(tape.Add(tape.Embedding(_word, batch.InputIds), tape.Embedding(_position, positions)), tape.Embedding(_tokenType, batch.TokenTypeIds));
        return tape.LayerNorm(x, _embLnW, _embLnB, c.LayerNormEps);
    }

    /// <summary>
    /// <see cref="Hidden"/> without a gradient, block by block: each block runs the same tape code on a tape of its own
    /// that is reset once its output is copied, so only one block's activations are alive at a time.
    /// </summary>
    private Tensor InferHidden(BertBatch batch)
    {
        Tensor current;
        using (var tape = new Tape { IsRecording = false }) current = Embeddings(tape, batch).Value.Clone();
        foreach (var layer in Layers)
        {
            using var tape = new Tape { IsRecording = false };
            Tensor next;
            try { next = layer.Forward(tape, Variable.Constant(current), batch.AttentionMask, batch.Batch, batch.Length).Value.Clone(); }
            finally { current.Dispose(); }
            current = next;
        }
        return current;
    }

    /// <summary>How <see cref="SentenceEmbeddings"/>, <see cref="Pooled"/> and the classification head pool the last hidden
    /// state (sentence-transformers' 1_Pooling and 2_Normalize, as the loaded folder configures them; default: mean, normalised).</summary>
    public SentencePooling Pooling { get; set; } = SentencePooling.MeanNormalized;

    /// <summary>The last hidden state pooled by <see cref="Pooling"/>'s mode into one row per sequence (B, C), L2-normalised
    /// when <paramref name="normalize"/>.</summary>
    public Variable Pooled(Tape tape, BertBatch batch, bool normalize) => Pool(tape, Hidden(tape, batch), batch, normalize);

    /// <summary><paramref name="hidden"/> (B·T, C) → (B, C): the mean over attended tokens, or the [CLS] row (position 0).</summary>
    private Variable Pool(Tape tape, Variable hidden, BertBatch batch, bool normalize)
    {
        var pooled = Pooling.Mode == PoolingMode.Cls
            ? tape.Embedding(hidden, Enumerable.Range(0, batch.Batch).Select(b => b * batch.Length).ToArray()) // row gather
            : tape.MeanPool(hidden, batch.AttentionMask, batch.Batch, batch.Length);
        return normalize ? tape.L2Normalize(pooled) : pooled;
    }

    /// <summary>The last hidden state, row-major [Batch, Length, HiddenSize] (padded positions included).</summary>
    public float[] LastHiddenState(BertBatch batch)
    {
        using var hidden = InferHidden(batch);
        return hidden.ToFloatArray();
    }

    /// <summary>
    /// sentence-transformers embeddings: the last hidden state pooled as <see cref="Pooling"/> says (the mean over the
    /// attended tokens of each row, or its [CLS] row), then divided by its L2 norm (floored at 1e-12, as torch's normalize)
    /// when the pooling normalises. Returns one [HiddenSize] vector per row.
    /// </summary>
    public float[][] SentenceEmbeddings(BertBatch batch)
    {
        using var hidden = InferHidden(batch);
        using var tape = new Tape { IsRecording = false };
        float[] flat = Pool(tape, Variable.Constant(hidden), batch, Pooling.Normalize).Value.ToFloatArray();
        int h = Config.HiddenSize;
        var result = new float[batch.Batch][];
        for (int b = 0; b < result.Length; b++) result[b] = flat.AsSpan(b * h, h).ToArray();
        return result;
    }

    /// <summary>Mean pooling of hidden [B, T, H] over mask [B, T], then L2 normalisation of each row (for hidden states
    /// computed elsewhere, e.g. by ONNX Runtime).</summary>
    public static float[][] MeanPoolNormalize(ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int batch, int length, int hiddenSize)
    {
        if (hidden.Length != batch * length * hiddenSize || mask.Length != batch * length)
            throw new ArgumentException($"hidden {hidden.Length} / mask {mask.Length} do not match [{batch}, {length}, {hiddenSize}]");
        using var tape = new Tape { IsRecording = false };
        using var x = Tensor.From<float>(hidden, [batch * length, hiddenSize], "hidden");
        var y = tape.L2Normalize(tape.MeanPool(Variable.Constant(x), mask.ToArray(), batch, length)).Value.ToFloatArray();
        var result = new float[batch][];
        for (int b = 0; b < batch; b++) result[b] = y.AsSpan(b * hiddenSize, hiddenSize).ToArray();
        return result;
    }

    public void Dispose() => Parameters.Dispose();
}

/// <summary>Which token states make a sentence embedding (sentence-transformers' pooling modes that EdgeTune runs).</summary>
public enum PoolingMode
{
    /// <summary>The mean over the attended tokens (pooling_mode_mean_tokens; all-MiniLM-L6-v2).</summary>
    Mean,

    /// <summary>The first token's state, [CLS] (pooling_mode_cls_token; arctic-embed).</summary>
    Cls,
}

/// <summary>A sentence-transformers head: the pooling mode, then L2 normalisation when a Normalize module follows.</summary>
public sealed record SentencePooling(PoolingMode Mode, bool Normalize)
{
    /// <summary>Mean pooling then Normalize (all-MiniLM-L6-v2, and what <see cref="BertFolder.Save(BertEncoder, BertWordPiece, string)"/> writes by default).</summary>
    public static SentencePooling MeanNormalized { get; } = new(PoolingMode.Mean, true);

    /// <summary>[CLS] pooling then Normalize (Snowflake arctic-embed).</summary>
    public static SentencePooling ClsNormalized { get; } = new(PoolingMode.Cls, true);
}
