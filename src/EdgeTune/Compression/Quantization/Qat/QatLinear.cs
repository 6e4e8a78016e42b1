using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Quantization.Qat;

/// <summary>
/// Quantization-aware training of one projection: an <see cref="ILinear"/> over a plain <see cref="Linear"/>
/// whose weight is fake-quantized in <see cref="Format"/> on every forward (training and inference), so the
/// layer computes what its quantized copy will compute, while the optimizer updates the F32 weight behind
/// it (straight-through gradient, <see cref="FakeQuantOp"/>). Optionally the input is also fake-quantized
/// per token to int8 (<see cref="QuantizeActivations"/>). The bias stays F32.
/// </summary>
/// <remarks>
/// Inference fake-quantizes the whole weight on each call (out·in work, as much as one token's matmul),
/// since the weight may have changed since the last call; that is fine for evaluation and sampling during
/// training, not for serving — <see cref="QatInjector.Remove"/> the wrappers and quantize for that.
/// </remarks>
public sealed class QatLinear : ILinear
{
    /// <exception cref="ShapeException">The input dimension is not a multiple of the format's block.</exception>
    public QatLinear(Linear inner, QuantFormat format, bool quantizeActivations = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (!FakeQuant.Supports(format, inner.InFeatures))
            throw new ShapeException($"QatLinear '{inner.Name}': {format.Info().Name} needs an input dimension that is a multiple of {format.Info().BlockSize}; the weight is {inner.Weight.Value.ShapeString}");
        Inner = inner;
        Format = format;
        QuantizeActivations = quantizeActivations;
    }

    /// <summary>The wrapped layer holding the F32 (trained) weight.</summary>
    public Linear Inner { get; }

    public QuantFormat Format { get; }

    /// <summary>Whether inputs are fake-quantized per token to int8 as well.</summary>
    public bool QuantizeActivations { get; }

    public string Name => Inner.Name;
    public int InFeatures => Inner.InFeatures;
    public int OutFeatures => Inner.OutFeatures;
    public IEnumerable<Parameter> Parameters => Inner.Parameters;

    /// <summary>The fake-quantized weight as it is now, [out, in] F32 (a new array).</summary>
    public float[] FakeQuantizedWeight()
    {
        var w = Inner.Weight.Value;
        using var wide = w.DType == DType.F32 ? null : w.To(DType.F32);
        var dst = new float[w.ElementCount];
        FakeQuant.Weights(Format, (wide ?? w).ReadOnlySpan<float>(), dst, OutFeatures, InFeatures);
        return dst;
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false)
    {
        int n = InFeatures, o = OutFeatures;
        if (rows < 0 || x.Length < (long)rows * n || y.Length < (long)rows * o)
            throw new ShapeException($"QatLinear '{Name}': x has {x.Length} and y {y.Length} elements; expected {rows}×{n} and {rows}×{o}");
        x = x[..(rows * n)];
        y = y[..(rows * o)];
        float[]? xq = null;
        if (QuantizeActivations)
        {
            xq = new float[rows * n];
            FakeQuant.Activations(x, xq, rows, n);
            x = xq;
        }
        Gemm.ABt(x, FakeQuantizedWeight(), y, rows, n, o, accumulate);
        if (Inner.Bias is { } b) Elementwise.AddRowBias(y, b.Value.ReadOnlySpan<float>(), rows, o);
    }

    public Variable Forward(Tape tape, Variable x)
    {
        var input = QuantizeActivations ? tape.FakeQuantizeActivations(x) : x;
        var w = tape.FakeQuantize(Inner.Weight.Variable, Format);
        return tape.Linear(input, w, Inner.Bias?.Variable);
    }
}
