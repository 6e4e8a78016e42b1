using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Formats;
using EdgeTune.Generation;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Llama;

/// <summary>
/// The Llama-family decoder (Llama 1/2/3, Mistral, Qwen2/2.5, SmolLM, TinyLlama, llama2.c models):
/// token embedding, pre-norm blocks of grouped-query attention with RoPE and a SwiGLU MLP, final
/// RMSNorm, tied or separate output head. Parameters carry Hugging Face names.
/// </summary>
public sealed partial class LlamaModel : ICausalLM
{
    private readonly IDisposable? _owner;
    private RopeTable? _rope;

    private LlamaModel(HfConfig config, RopeStyle ropeStyle, ParameterCollection parameters, IDisposable? owner,
        IReadOnlyDictionary<string, QuantFormat>? quantized = null)
    {
        Config = config;
        RopeStyle = ropeStyle;
        Parameters = parameters;
        _owner = owner;
        Embed = parameters[LlamaNames.Embed];
        FinalNorm = parameters[LlamaNames.FinalNorm];
        LmHead = parameters.TryGet(LlamaNames.LmHead, out var head) ? head! : Embed;
        if (quantized is not null && quantized.TryGetValue(LlamaNames.Embed, out var embedFormat))
            QuantizedEmbed = MatrixOver(Embed, embedFormat, config.VocabSize, config.HiddenSize);
        if (TiedHead) QuantizedHead = QuantizedEmbed;
        else if (quantized is not null && quantized.TryGetValue(LlamaNames.LmHead, out var headFormat))
            QuantizedHead = MatrixOver(LmHead, headFormat, config.VocabSize, config.HiddenSize);
        var layers = new LlamaLayer[config.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            ILinear Lin(string weightName, string? biasName = null)
            {
                Parameter? bias = biasName is not null && parameters.TryGet(biasName, out var b) ? b : null;
                string layerName = weightName[..^".weight".Length];
                if (quantized is not null && quantized.TryGetValue(weightName, out var format))
                {
                    var (rows, cols) = ExpectedShape(config, weightName);
                    return new QuantizedLinear(layerName, format, rows, cols, parameters[weightName], bias);
                }
                return new Linear(layerName, parameters[weightName], bias);
            }
            layers[i] = new LlamaLayer(
                parameters[LlamaNames.AttnNorm(i)],
                Lin(LlamaNames.Q(i), LlamaNames.QBias(i)), Lin(LlamaNames.K(i), LlamaNames.KBias(i)),
                Lin(LlamaNames.V(i), LlamaNames.VBias(i)), Lin(LlamaNames.O(i)),
                parameters[LlamaNames.FfnNorm(i)],
                Lin(LlamaNames.Gate(i)), Lin(LlamaNames.Up(i)), Lin(LlamaNames.Down(i)));
        }
        Layers = layers;
    }

    public HfConfig Config { get; }

    /// <summary>How the q/k projection rows pair channels for RoPE (follows the checkpoint's layout).</summary>
    public RopeStyle RopeStyle { get; }

    public ParameterCollection Parameters { get; }
    /// <summary>The token embedding [V, C]; when <see cref="QuantizedEmbed"/> is set, the frozen parameter that holds its
    /// quantized bytes (as <see cref="QuantizedLinear.Storage"/> does).</summary>
    public Parameter Embed { get; private set; }
    public Parameter FinalNorm { get; }
    /// <summary>The output head; the same parameter as <see cref="Embed"/> when tied.</summary>
    public Parameter LmHead { get; private set; }

    /// <summary>The embedding table held quantized (frozen; a view of <see cref="Embed"/>'s bytes), or null when it is float.</summary>
    public QuantizedMatrix? QuantizedEmbed { get; private set; }

    /// <summary>The output head held quantized (the same matrix as <see cref="QuantizedEmbed"/> when tied), or null.</summary>
    public QuantizedMatrix? QuantizedHead { get; private set; }
    public IReadOnlyList<LlamaLayer> Layers { get; }

    public int VocabSize => Config.VocabSize;
    public int MaxPositions => Config.MaxPositionEmbeddings;
    public bool TiedHead => ReferenceEquals(LmHead, Embed);

    /// <summary>Sliding attention window in positions (Mistral-style), 0 for full causal attention.</summary>
    public int AttentionWindow => Config.SlidingWindow is int w && Config.UseSlidingWindow != false ? w : 0;

    /// <summary>The HF names and shapes a config implies, in a fixed order.</summary>
    public static IEnumerable<(string Name, int[] Shape)> ExpectedTensors(HfConfig c)
    {
        int d = c.HiddenSize, q = c.QueryDim, kv = c.KeyValueDim, h = c.IntermediateSize;
        yield return (LlamaNames.Embed, [c.VocabSize, d]);
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            yield return (LlamaNames.AttnNorm(i), [d]);
            yield return (LlamaNames.Q(i), [q, d]);
            yield return (LlamaNames.K(i), [kv, d]);
            yield return (LlamaNames.V(i), [kv, d]);
            if (c.AttentionBias)
            {
                yield return (LlamaNames.QBias(i), [q]);
                yield return (LlamaNames.KBias(i), [kv]);
                yield return (LlamaNames.VBias(i), [kv]);
            }
            yield return (LlamaNames.O(i), [d, q]);
            yield return (LlamaNames.FfnNorm(i), [d]);
            yield return (LlamaNames.Gate(i), [h, d]);
            yield return (LlamaNames.Up(i), [h, d]);
            yield return (LlamaNames.Down(i), [d, h]);
        }
        yield return (LlamaNames.FinalNorm, [d]);
        if (!c.TieWordEmbeddings) yield return (LlamaNames.LmHead, [c.VocabSize, d]);
    }

    /// <summary>
    /// Builds the model over an opened checkpoint. Projection weights stay as stored (memory-mapped
    /// F32/F16/BF16 views where the format allows); norms and biases become F32; GGUF Q8_0/Q4_0 projections
    /// (and EdgeTune's quantized safetensors) stay quantized as views of the file (<see cref="ModelLoadOptions.KeepQuantized"/>),
    /// other block-quantized tensors are dequantized to F32. The model takes ownership of <paramref name="reader"/>.
    /// </summary>
    public static LlamaModel Load(ICheckpointReader reader, HfConfig config) => Load(reader, config, ModelLoadOptions.Inference);

    /// <summary>As <see cref="Load(ICheckpointReader, HfConfig)"/>; with <see cref="ModelLoadOptions.Trainable"/> every
    /// tensor becomes an owned, writable F32 copy marked trainable (full fine-tuning).</summary>
    public static LlamaModel Load(ICheckpointReader reader, HfConfig config, ModelLoadOptions options)
    {
        config.Validate(reader.Source);
        var parameters = new ParameterCollection();
        var quantized = new Dictionary<string, QuantFormat>(StringComparer.Ordinal);
        bool keepQuantized = options.KeepQuantized && !options.Trainable;
        try
        {
            foreach (var (name, shape) in ExpectedTensors(config))
            {
                if (QuantizedCheckpoint.TryRead(reader, name, shape, out var stored, out var storedFormat))
                {
                    if (keepQuantized && (IsProjection(name) || name is LlamaNames.Embed or LlamaNames.LmHead))
                    {
                        parameters.Add(new Parameter(name, stored!, trainable: false));
                        quantized[name] = storedFormat;
                        continue;
                    }
                    var wide = QuantizedCheckpoint.Dequantize(stored!, storedFormat, shape, name);
                    stored!.Dispose();
                    parameters.Add(new Parameter(name, wide, trainable: options.Trainable));
                    continue;
                }
                // GGUF Q8_0/Q4_0 projections: a view of the mapped file, no copy (the model runs the file's RoPE layout).
                if (keepQuantized && reader is GgufFile gg && IsProjection(name) && GgufTensorNames.ToGguf(name) is { } ggName && gg.Contains(ggName))
                {
                    var raw = gg.GetTensor(ggName);
                    if (raw.DType is DType.Q8_0 or DType.Q4_0 && raw.Shape.SequenceEqual(shape))
                    {
                        raw.Name = name;
                        parameters.Add(new Parameter(name, raw, trainable: false));
                        quantized[name] = raw.DType == DType.Q8_0 ? QuantFormat.Q8_0 : QuantFormat.Q4_0;
                        continue;
                    }
                    raw.Dispose();
                }
                bool optionalHead = name == LlamaNames.LmHead && !HasTensor(reader, name);
                if (optionalHead) continue; // some checkpoints omit lm_head and tie implicitly
                Tensor t = ReadTensor(reader, config, name);
                if (!t.Shape.SequenceEqual(shape))
                    throw new CheckpointFormatException(reader.Source, $"shape {t.ShapeString} differs from the {ShapeException.Format(shape)} the config implies", name);
                bool isVector = shape.Length == 1;
                if (keepQuantized && t.DType is (DType.Q8_0 or DType.Q4_0) && IsProjection(name))
                {
                    t.Name = name;
                    parameters.Add(new Parameter(name, t, trainable: false));
                    quantized[name] = t.DType == DType.Q8_0 ? QuantFormat.Q8_0 : QuantFormat.Q4_0;
                    continue;
                }
                if (t.DType is not (DType.F32 or DType.F16 or DType.BF16) || (isVector && t.DType != DType.F32)
                    || (options.Trainable && (t.DType != DType.F32 || t.IsReadOnly)))
                {
                    var f = ToF32(t);
                    t.Dispose(); // frees a converted copy; a view of the mapped file is left alone
                    t = f;
                }
                t.Name = name;
                // Disposing a view is a no-op, so the parameter may always "own" its tensor.
                parameters.Add(new Parameter(name, t, trainable: options.Trainable));
            }
            return new LlamaModel(config, reader.RopeLayout, parameters, reader, quantized);
        }
        catch
        {
            parameters.Dispose();
            throw;
        }
    }

    /// <summary>A model with random weights of the config's real shapes (N(0, std) matrices, unit norms), F32.</summary>
    /// <remarks><paramref name="dtype"/> F64 gives a model whose training forward runs the double-precision
    /// references (for gradient checks); inference needs F32, F16 or BF16.</remarks>
    public static LlamaModel CreateRandom(HfConfig config, ulong seed, RopeStyle ropeStyle = RopeStyle.HalfSplit, float std = 0.02f,
        bool trainable = false, DType dtype = DType.F32)
    {
        config.Validate("random model config");
        var rng = new Rng(seed);
        var parameters = new ParameterCollection();
        foreach (var (name, shape) in ExpectedTensors(config))
        {
            var t = Tensor.Zeros(DType.F32, shape, name);
            if (shape.Length == 1) t.Span<float>().Fill(name.EndsWith("bias", StringComparison.Ordinal) ? 0f : 1f);
            else rng.FillGaussian(t.Span<float>(), 0f, std);
            if (dtype != DType.F32) { var converted = t.To(dtype); t.Dispose(); t = converted; }
            parameters.Add(new Parameter(name, t, trainable));
        }
        return new LlamaModel(config, ropeStyle, parameters, owner: null);
    }

    /// <summary>
    /// A model over parameters built in memory (e.g. a structurally pruned copy): every tensor
    /// <see cref="ExpectedTensors"/> names must be present with that shape (lm_head may be absent, which ties it).
    /// The model takes ownership of <paramref name="parameters"/>.
    /// </summary>
    public static LlamaModel FromParameters(HfConfig config, ParameterCollection parameters, RopeStyle ropeStyle = RopeStyle.HalfSplit)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        config.Validate("LlamaModel.FromParameters config");
        foreach (var (name, shape) in ExpectedTensors(config))
        {
            if (!parameters.TryGet(name, out var p))
            {
                if (name == LlamaNames.LmHead) continue;
                throw new ShapeException($"LlamaModel.FromParameters: tensor '{name}' is missing");
            }
            if (!p.Value.Shape.SequenceEqual(shape))
                throw new ShapeException($"LlamaModel.FromParameters: '{name}' is {p.Value.ShapeString}; the config implies {ShapeException.Format(shape)}");
        }
        return new LlamaModel(config, ropeStyle, parameters, owner: null);
    }

    public KvCache CreateCache(int capacity)
    {
        if (capacity > MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"the model supports at most {MaxPositions} positions");
        return new KvCache(Config.NumHiddenLayers, capacity, Config.NumKeyValueHeads, Config.HeadDim);
    }

    /// <summary>True for the seven decoder projection weights (the tensors a quantized model keeps quantized).</summary>
    public static bool IsProjection(string hfName) =>
        hfName.StartsWith("model.layers.", StringComparison.Ordinal) && hfName.EndsWith("_proj.weight", StringComparison.Ordinal);

    /// <summary>Quantizes the embedding (and a separate LM head) in place: each float table is replaced by a frozen
    /// parameter of its quantized bytes and released. Returns the number of tables quantized (0 when already
    /// quantized). The tables become frozen: train adapters on top, not the embedding.</summary>
    internal int QuantizeEmbeddings(QuantFormat format)
    {
        int count = 0;
        if (QuantizedEmbed is null)
        {
            bool tied = TiedHead;
            Embed = QuantizeTable(Embed, format);
            QuantizedEmbed = MatrixOver(Embed, format, Config.VocabSize, Config.HiddenSize);
            if (tied) { LmHead = Embed; QuantizedHead = QuantizedEmbed; }
            count++;
        }
        if (QuantizedHead is null)
        {
            LmHead = QuantizeTable(LmHead, format);
            QuantizedHead = MatrixOver(LmHead, format, Config.VocabSize, Config.HiddenSize);
            count++;
        }
        return count;
    }

    private Parameter QuantizeTable(Parameter table, QuantFormat format)
    {
        var t = table.Value;
        var storage = QuantizedLinear.CreateStorage(format, t.Dim(0), t.Dim(1), table.Name);
        using (var q = QuantizedMatrix.Quantize(t, format)) q.Bytes.CopyTo(QuantizedLinear.WritableBytes(storage));
        var p = new Parameter(table.Name, storage, trainable: false);
        Parameters.Replace(p).Dispose();
        return p;
    }

    private static QuantizedMatrix MatrixOver(Parameter storage, QuantFormat format, int rows, int cols)
    {
        var t = storage.Value;
        return QuantizedMatrix.FromStorage(format, rows, cols, t.Reshape(t.Shape.ToArray()), storage.Name); // a non-owning view
    }

    private static (int Rows, int Cols) ExpectedShape(HfConfig config, string name)
    {
        foreach (var (n, shape) in ExpectedTensors(config))
            if (n == name) return (shape[0], shape[1]);
        throw new KeyNotFoundException($"'{name}' is not a tensor of this config");
    }

    private static bool HasTensor(ICheckpointReader reader, string hfName) =>
        reader is GgufFile ? GgufTensorNames.ToGguf(hfName) is { } g && reader.Contains(g) : reader.Contains(hfName);

    private static Tensor ReadTensor(ICheckpointReader reader, HfConfig config, string name)
    {
        if (reader is GgufFile g) return GgufLlama.GetHfTensor(g, config, name, g.RopeLayout);
        if (!reader.Contains(name)) throw new CheckpointFormatException(reader.Source, "the tensor is missing", name);
        return reader.GetTensor(name);
    }

    private static Tensor ToF32(Tensor t) => t.DType switch
    {
        DType.F32 or DType.F16 or DType.BF16 or DType.F64 => t.To(DType.F32),
        _ => GgufQuant.ToFloat32(t),
    };

    public void Dispose()
    {
        Parameters.Dispose();
        _owner?.Dispose();
    }
}
