using EdgeTune.Autograd;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>Building a <see cref="DecoderModel"/>: from a checkpoint, with random weights, or over parameters in memory.</summary>
public sealed partial class DecoderModel
{
    /// <summary>
    /// Builds the model over an opened checkpoint. Projection weights stay as stored (memory-mapped
    /// F32/F16/BF16 views where the format allows); norms and biases become F32; GGUF Q8_0/Q4_0 projections, embedding
    /// and output head (and EdgeTune's quantized safetensors) stay quantized as views of the file (<see cref="ModelLoadOptions.KeepQuantized"/>),
    /// other block-quantized tensors are dequantized to F32. The model takes ownership of <paramref name="reader"/>.
    /// </summary>
    public static DecoderModel Load(ICheckpointReader reader, HfConfig config) => Load(reader, config, ModelLoadOptions.Inference);

    /// <summary>As <see cref="Load(ICheckpointReader, HfConfig)"/>; with <see cref="ModelLoadOptions.Trainable"/> every
    /// tensor becomes an owned, writable F32 copy marked trainable (full fine-tuning).</summary>
    public static DecoderModel Load(ICheckpointReader reader, HfConfig config, ModelLoadOptions options)
    {
        var family = ModelRegistry.Family(config.ModelType, reader.Source);
        if (reader is GgufFile ggufFile) config = family.FromGguf(ggufFile, config);
        config.Validate(reader.Source);
        family.Validate(config, reader.Source);
        var names = family.GgufNames;
        var parameters = new ParameterCollection();
        var quantized = new Dictionary<string, QuantFormat>(StringComparer.Ordinal);
        bool keepQuantized = options.KeepQuantized && !options.Trainable;
        try
        {
            foreach (var (name, shape) in ExpectedTensors(config))
            {
                if (QuantizedTensors.TryRead(reader, name, shape, out var stored, out var storedFormat))
                {
                    if (keepQuantized && (IsProjection(name) || name is Names.Embed or Names.LmHead))
                    {
                        parameters.Add(new Parameter(name, stored!, trainable: false));
                        quantized[name] = storedFormat;
                        continue;
                    }
                    var wide = QuantizedTensors.Dequantize(stored!, storedFormat, shape, name);
                    stored!.Dispose();
                    parameters.Add(new Parameter(name, wide, trainable: options.Trainable));
                    continue;
                }
                // GGUF Q8_0/Q4_0 projections, embedding and head: a view of the mapped file, no copy (the model runs the
                // file's RoPE layout). A quantized embedding serves as the tied head too, decoded panel by panel.
                if (keepQuantized && reader is GgufFile gg && (IsProjection(name) || name is Names.Embed or Names.LmHead)
                    && names.ToGguf(name) is { } ggName && gg.Contains(ggName))
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
                bool optionalHead = name == Names.LmHead && !HasTensor(reader, name, names);
                if (optionalHead) continue; // some checkpoints omit lm_head and tie implicitly
                Tensor t = ReadTensor(reader, config, name, names);
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
                bool offset = family.NormOffset != 0 && isVector && reader is not GgufFile && family.IsNormWeight(name);
                if (t.DType is not (DType.F32 or DType.F16 or DType.BF16) || (isVector && t.DType != DType.F32)
                    || (options.Trainable && (t.DType != DType.F32 || t.IsReadOnly)) || (offset && t.IsReadOnly))
                {
                    var f = ToF32(t);
                    t.Dispose(); // frees a converted copy; a view of the mapped file is left alone
                    t = f;
                }
                if (offset)
                {
                    // HF stores Gemma-style norm weights as w, the model multiplies by 1 + w: keep the multiplier.
                    var span = t.Span<float>();
                    for (int k = 0; k < span.Length; k++) span[k] += family.NormOffset;
                }
                t.Name = name;
                // Disposing a view is a no-op, so the parameter may always "own" its tensor.
                parameters.Add(new Parameter(name, t, trainable: options.Trainable));
            }
            return new DecoderModel(family, config, reader.RopeLayout, parameters, reader, quantized);
        }
        catch
        {
            parameters.Dispose();
            throw;
        }
    }

    /// <summary>A model with random weights of the config's real shapes (N(0, std) matrices, unit norm multipliers,
    /// zero biases), F32.</summary>
    /// <remarks><paramref name="dtype"/> F64 gives a model whose training forward runs the double-precision
    /// references (for gradient checks); inference needs F32, F16 or BF16.</remarks>
    public static DecoderModel CreateRandom(HfConfig config, ulong seed, RopeStyle ropeStyle = RopeStyle.HalfSplit, float std = 0.02f,
        bool trainable = false, DType dtype = DType.F32)
    {
        config.Validate("random model config");
        var family = ModelRegistry.Family(config.ModelType);
        family.Validate(config, "random model config");
        var parameters = Internal.RandomWeights.Create(ExpectedTensors(config), seed, std, trainable, dtype);
        return new DecoderModel(family, config, ropeStyle, parameters, owner: null);
    }

    /// <summary>
    /// A model over parameters built in memory (e.g. a structurally pruned copy): every tensor
    /// <see cref="ExpectedTensors"/> names must be present with that shape (lm_head may be absent, which ties it).
    /// The model takes ownership of <paramref name="parameters"/>.
    /// </summary>
    public static DecoderModel FromParameters(HfConfig config, ParameterCollection parameters, RopeStyle ropeStyle = RopeStyle.HalfSplit)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        config.Validate("DecoderModel.FromParameters config");
        var family = ModelRegistry.Family(config.ModelType);
        foreach (var (name, shape) in ExpectedTensors(config))
        {
            if (!parameters.TryGet(name, out var p))
            {
                if (name == Names.LmHead) continue;
                throw new ShapeException($"DecoderModel.FromParameters: tensor '{name}' is missing");
            }
            if (!p.Value.Shape.SequenceEqual(shape))
                throw new ShapeException($"DecoderModel.FromParameters: '{name}' is {p.Value.ShapeString}; the config implies {ShapeException.Format(shape)}");
        }
        return new DecoderModel(family, config, ropeStyle, parameters, owner: null);
    }

    private static bool HasTensor(ICheckpointReader reader, string hfName, GgufNameMap names) =>
        reader is GgufFile ? names.ToGguf(hfName) is { } g && reader.Contains(g) : reader.Contains(hfName);

    private static Tensor ReadTensor(ICheckpointReader reader, HfConfig config, string name, GgufNameMap names)
    {
        if (reader is GgufFile g) return GgufLlama.GetHfTensor(g, config, name, g.RopeLayout, names);
        if (!reader.Contains(name)) throw new CheckpointFormatException(reader.Source, "the tensor is missing", name);
        return reader.GetTensor(name);
    }

    private static Tensor ToF32(Tensor t) => t.DType switch
    {
        DType.F32 or DType.F16 or DType.BF16 or DType.F64 => t.To(DType.F32),
        _ => GgufQuant.ToFloat32(t),
    };
}
