using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression;

public class QuantizedLinearTests
{
    public static TheoryData<QuantFormat> Formats => [QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Int8];

    private static (QuantizedLinear Q, Linear Plain) Pair(QuantFormat format, int outF, int inF, bool bias, ulong seed)
    {
        var rng = new Rng(seed);
        var w = Tensor.Zeros(DType.F32, [outF, inF], "l.weight");
        rng.FillGaussian(w.Span<float>(), 0, 0.5f);
        Parameter? b = null;
        if (bias)
        {
            var bt = Tensor.Zeros(DType.F32, [outF], "l.bias");
            rng.FillGaussian(bt.Span<float>(), 0, 0.5f);
            b = new Parameter("l.bias", bt, trainable: false);
        }
        var q = QuantizedLinear.Quantize("l", w, format, b);
        var deq = q.Weight.ToTensor();
        w.Dispose();
        return (q, new Linear("l", new Parameter("l.weight", deq, trainable: false), b));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void ForwardEqualsLinearOverDequantizedWeight(QuantFormat format)
    {
        foreach (var (outF, inF, rows, bias) in new[] { (7, 64, 1, false), (70, 96, 5, true), (1, 32, 3, true), (130, 128, 0, false) })
        {
            var (q, plain) = Pair(format, outF, inF, bias, (ulong)(outF * 31 + inF));
            var rng = new Rng(5);
            var x = new float[rows * inF];
            rng.FillGaussian(x, 0, 1);
            var a = new float[rows * outF];
            var b = new float[rows * outF];
            q.Forward(x, a, rows);
            plain.Forward(x, b, rows);
            // the fast decode path (few rows) may round the activations to 8 bits as llama.cpp does: relative tolerance
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-2f * (1 + Math.Abs(b[i])), $"{format} [{outF},{inF}] rows {rows}: {a[i]} vs {b[i]}");
            // accumulate adds on top
            q.Forward(x, a, rows, accumulate: true);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - 2 * b[i]) <= 2e-2f * (1 + Math.Abs(b[i]))); // as Linear: the product and the bias are added again
            Assert.Equal(q.Weight.ByteLength, (long)outF * format.RowBytes(inF));
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void TapeForwardAndInputGradientEqualLinear(QuantFormat format)
    {
        const int outF = 40, inF = 64, n = 6;
        var (q, plain) = Pair(format, outF, inF, bias: true, seed: 17);
        var rng = new Rng(9);
        var xv = new float[n * inF];
        rng.FillGaussian(xv, 0, 1);
        var seedGrad = new float[n * outF];
        rng.FillGaussian(seedGrad, 0, 1);

        (float[] Y, float[] Dx) Run(ILinear lin)
        {
            var x = new Parameter("x", Tensor.From<float>(xv, [2, 3, inF], "x"), trainable: true);
            using var tape = new Tape();
            var y = lin.Forward(tape, x.Variable);
            Assert.Equal([2, 3, outF], y.Shape.ToArray());
            float[] yv = y.Value.ToFloatArray();
            var loss = tape.Sum(tape.Mul(y, Variable.Constant(Tensor.From<float>(seedGrad, [2, 3, outF], "g"))));
            tape.Backward(loss);
            var r = (yv, x.Grad!.ToFloatArray());
            x.Dispose();
            return r;
        }
        var (yq, dxq) = Run(q);
        var (yp, dxp) = Run(plain);
        for (int i = 0; i < yq.Length; i++) Assert.Equal(yp[i], yq[i], 1e-3f);
        for (int i = 0; i < dxq.Length; i++) Assert.Equal(dxp[i], dxq[i], 1e-3f);
        Assert.Contains(dxq, v => Math.Abs(v) > 1e-2f);
    }

    [Fact]
    public void InputGradientMatchesFiniteDifferences()
    {
        // loss(x) = Σ g ⊙ (x·Wᵀ + b), W the dequantized Q4_0 weight: exact derivative g·W, compared in double
        const int outF = 5, inF = 32, n = 3;
        var (q, plain) = Pair(QuantFormat.Q4_0, outF, inF, bias: true, seed: 4);
        float[] w = plain.Weight.Value.ToFloatArray();
        var rng = new Rng(2);
        var g = new float[n * outF];
        rng.FillGaussian(g, 0, 1);
        var x0 = new double[n * inF];
        for (int i = 0; i < x0.Length; i++) x0[i] = rng.NextDouble() * 2 - 1;
        double F(double[] x)
        {
            double s = 0;
            for (int r = 0; r < n; r++)
                for (int o = 0; o < outF; o++)
                {
                    double acc = plain.Bias!.Value.ReadOnlySpan<float>()[o];
                    for (int k = 0; k < inF; k++) acc += x[r * inF + k] * w[o * inF + k];
                    s += g[r * outF + o] * acc;
                }
            return s;
        }
        var xp = new Parameter("x", Tensor.From<float>(x0.Select(v => (float)v).ToArray(), [n, inF], "x"), trainable: true);
        using (var tape = new Tape())
        {
            var y = q.Forward(tape, xp.Variable);
            tape.Backward(tape.Sum(tape.Mul(y, Variable.Constant(Tensor.From<float>(g, [n, outF], "g")))));
        }
        double[] analytic = xp.Grad!.ToFloatArray().Select(v => (double)v).ToArray();
        GradCheck.Check("QuantLinear dx", F, x0, analytic, h: 1e-4, rtol: 1e-4, atol: 1e-4);
    }

    [Fact]
    public void BadInputIsRefused()
    {
        var (q, _) = Pair(QuantFormat.Q8_0, 4, 32, bias: false, seed: 1);
        Assert.Throws<ShapeException>(() => q.Forward(new float[31], new float[4], 1));
        var x = new Parameter("x", Tensor.Zeros(DType.F32, [2, 31], "x"), trainable: true);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => q.Forward(tape, x.Variable));
        Assert.Contains("QuantLinear", e.Message);
        Assert.Throws<ArgumentException>(() => QuantizedLinear.Quantize("bad", Tensor.Zeros(DType.F32, [4, 33], "w"), QuantFormat.Q4_0));
        Assert.DoesNotContain(q.Parameters, p => p.Trainable);
    }
}
