using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Nn.Quantized;

/// <summary>
/// A frozen linear layer y = x·Wᵀ (+ b) whose weight W [out, in] is a <see cref="QuantizedMatrix"/>: inference
/// through <see cref="QuantGemm.ABt"/>, training through <see cref="QuantLinearOp"/> (gradient to the input only,
/// so LoRA adapters can train on top: QLoRA). No float copy of W is kept.
/// </summary>
/// <remarks>
/// <see cref="Storage"/> is a frozen parameter named <c>&lt;name&gt;.weight</c> that holds the quantized bytes
/// (a GGUF <see cref="DType.Q8_0"/>/<see cref="DType.Q4_0"/> tensor [out, in] for those formats, so GGUF export
/// writes the blocks unchanged; a <see cref="DType.U8"/> tensor [out, row bytes] for NF4 and Int8); the model's
/// parameter collection lists it in place of the float weight. The matrix reads it through a view.
/// </remarks>
public sealed class QuantizedLinear : ILinear
{
    /// <summary>A layer over <paramref name="storage"/> (see remarks for its dtype and shape) in <paramref name="format"/>.</summary>
    public QuantizedLinear(string name, QuantFormat format, int outFeatures, int inFeatures, Parameter storage, Parameter? bias = null)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (storage.Trainable) throw new ArgumentException($"QuantizedLinear '{name}': the quantized weight '{storage.Name}' cannot be trainable");
        if (bias is not null && (bias.Value.DType != DType.F32 || bias.Value.Rank != 1 || bias.Value.Dim(0) != outFeatures))
            throw new ShapeException($"QuantizedLinear '{name}': bias {bias.Value.DType}{bias.Value.ShapeString} must be F32[{outFeatures}]");
        var t = storage.Value;
        var view = t.Reshape(t.Shape.ToArray()); // a non-owning view: the parameter owns the bytes
        Name = name;
        Storage = storage;
        Bias = bias;
        Weight = QuantizedMatrix.FromStorage(format, outFeatures, inFeatures, view, storage.Name);
    }

    public string Name { get; }
    public QuantizedMatrix Weight { get; }
    public QuantFormat Format => Weight.Format;
    public Parameter Storage { get; }
    public Parameter? Bias { get; }
    public int InFeatures => Weight.Cols;
    public int OutFeatures => Weight.Rows;

    /// <summary>Bytes of the quantized weight (and the F32 bias).</summary>
    public long ByteLength => Weight.ByteLength + (Bias?.Value.ByteLength ?? 0);

    public IEnumerable<Parameter> Parameters => Bias is null ? [Storage] : [Storage, Bias];

    /// <summary>Quantizes a float weight [out, in] (F32, F16, BF16) into a new layer; <paramref name="bias"/> is shared, not copied.</summary>
    public static QuantizedLinear Quantize(string name, Tensor weight, QuantFormat format, Parameter? bias = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2) throw new ShapeException($"QuantizedLinear '{name}': weight must be 2-D [out, in], got {weight.ShapeString}");
        int rows = weight.Dim(0), cols = weight.Dim(1);
        using var q = QuantizedMatrix.Quantize(weight, format);
        var storage = CreateStorage(format, rows, cols, name + ".weight");
        q.Bytes.CopyTo(WritableBytes(storage));
        return new QuantizedLinear(name, format, rows, cols, new Parameter(storage.Name, storage, trainable: false), bias);
    }

    /// <summary>Quantizes a plain <see cref="Linear"/> (its bias is shared).</summary>
    public static QuantizedLinear Quantize(Linear linear, QuantFormat format)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return Quantize(linear.Name, linear.Weight.Value, format, linear.Bias);
    }

    /// <summary>A zeroed storage tensor for a [rows, cols] matrix in <paramref name="format"/>: Q8_0/Q4_0 typed
    /// [rows, cols], else U8 [rows, row bytes].</summary>
    public static Tensor CreateStorage(QuantFormat format, int rows, int cols, string name)
    {
        int rowBytes = format.RowBytes(cols);
        var t = format switch
        {
            QuantFormat.Q8_0 => Tensor.Zeros(DType.Q8_0, [rows, cols], name),
            QuantFormat.Q4_0 => Tensor.Zeros(DType.Q4_0, [rows, cols], name),
            _ => Tensor.Zeros(DType.U8, [rows, rowBytes], name),
        };
        return t;
    }

    /// <summary>The raw bytes of an owned (writable) tensor of any dtype.</summary>
    internal static unsafe Span<byte> WritableBytes(Tensor t)
    {
        if (t.IsReadOnly) throw new InvalidOperationException($"tensor '{t.Name}' is a read-only mapping");
        return new Span<byte>(t.Pointer, checked((int)t.ByteLength));
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false)
    {
        if (x.Length != (long)rows * InFeatures || y.Length != (long)rows * OutFeatures)
            throw new ShapeException($"QuantizedLinear '{Name}': x has {x.Length} and y {y.Length} elements; expected {rows}×{InFeatures} and {rows}×{OutFeatures}");
        QuantGemm.ABt(x, Weight, y, rows, accumulate);
        if (Bias is not null) Elementwise.AddRowBias(y, Bias.Value.ReadOnlySpan<float>(), rows, OutFeatures);
    }

    public Variable Forward(Tape tape, Variable x) => tape.QuantLinear(x, Weight, Bias?.Variable);

    public override string ToString() => $"QuantizedLinear {Name} {Format.Info().Name}[{OutFeatures}, {InFeatures}]";
}
