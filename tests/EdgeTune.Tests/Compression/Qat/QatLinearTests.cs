using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression.Qat;

public class QatLinearTests
{
    private static Linear MakeLinear(int outF, int inF, ulong seed, bool bias, DType dtype = DType.F32)
    {
        var rng = new Rng(seed);
        var w = Tensor.Zeros(DType.F32, [outF, inF], "w");
        rng.FillGaussian(w.Span<float>(), 0f, 0.1f);
        Parameter? b = null;
        if (bias)
        {
            var bt = Tensor.Zeros(DType.F32, [outF], "b");
            rng.FillGaussian(bt.Span<float>(), 0f, 0.1f);
            b = new Parameter("b", bt);
        }
        var wt = dtype == DType.F32 ? w : w.To(dtype);
        return new Linear("layer", new Parameter("w", wt, trainable: dtype == DType.F32), b);
    }

    [Theory]
    [InlineData(QuantFormat.Q4_0, false)]
    [InlineData(QuantFormat.Q8_0, true)]
    [InlineData(QuantFormat.Int8, false)]
    public void ForwardsEqualAPlainLinearOverTheRoundedWeight(QuantFormat format, bool activations)
    {
        int outF = 7, inF = 64, rows = 5;
        var lin = MakeLinear(outF, inF, 3, bias: true);
        var qat = new QatLinear(lin, format, activations);
        var x = new float[rows * inF];
        new Rng(4).FillGaussian(x, 0f, 1f);

        var wq = QuantizedMatrix.Quantize(lin.Weight.Value, format).Dequantize();
        var xin = (float[])x.Clone();
        if (activations) FakeQuant.Activations<float>(x, xin, rows, inF);
        var expect = new float[rows * outF];
        Gemm.ABt(xin, wq, expect, rows, inF, outF);
        Elementwise.AddRowBias(expect, lin.Bias!.Value.ReadOnlySpan<float>(), rows, outF);

        var y = new float[rows * outF];
        qat.Forward(x, y, rows);
        Assert.Equal(expect, y);

        using var tape = new Tape();
        using var xt = Tensor.From<float>(x, [rows, inF], "x");
        var yt = qat.Forward(tape, Variable.Constant(xt));
        Assert.Equal(expect, yt.Value.ToFloatArray());
        // the float weight itself is untouched
        Assert.NotEqual(wq, lin.Weight.Value.ToFloatArray());
    }

    [Fact]
    public void WeightGradientIsTheStraightThroughGradientOfTheRoundedLinear()
    {
        int outF = 6, inF = 32, rows = 4;
        var lin = MakeLinear(outF, inF, 8, bias: true);
        var qat = new QatLinear(lin, QuantFormat.Q4_0);
        var x = new float[rows * inF];
        var c = new float[rows * outF];
        new Rng(1).FillGaussian(x, 0f, 1f);
        new Rng(2).FillGaussian(c, 0f, 1f);
        using var xt = Tensor.From<float>(x, [rows, inF], "x");
        using var ct = Tensor.From<float>(c, [rows, outF], "c");
        using (var tape = new Tape())
            tape.Backward(tape.Sum(tape.Mul(qat.Forward(tape, Variable.Constant(xt)), Variable.Constant(ct))));

        // dW = cᵀ·x and db = Σ_rows c, exactly what a plain Linear gets: the rounding is invisible to the gradient
        var dw = new float[outF * inF];
        Gemm.AtB<float>(c, x, dw, outF, rows, inF);
        Assert.Equal(dw, lin.Weight.Grad!.ToFloatArray());
        var db = new float[outF];
        for (int r = 0; r < rows; r++) for (int o = 0; o < outF; o++) db[o] += c[r * outF + o];
        Assert.Equal(db, lin.Bias!.Grad!.ToFloatArray());
    }

    [Fact]
    public void InputGradientMatchesFiniteDifferencesInDouble()
    {
        int outF = 5, inF = 64, rows = 3;
        var rng = new Rng(21);
        using var w = GradCheck.Param("w", [outF, inF], rng, trainable: false, scale: 0.5);
        using var b = GradCheck.Param("b", [outF], rng, trainable: true, scale: 0.5);
        using var x = GradCheck.Param("x", [rows, inF], rng, trainable: true);
        using var c = GradCheck.Param("c", [rows, outF], rng, trainable: false);
        var qat = new QatLinear(new Linear("l", w, b), QuantFormat.Q4_0);
        // y = x·fq(W)ᵀ + b is smooth in x and b; loss = Σ c ⊙ y²
        int n = GradCheck.Check([x, b, w, c], tape =>
        {
            var y = qat.Forward(tape, x.Variable);
            return tape.Sum(tape.Mul(tape.Mul(y, y), c.Variable));
        }, h: 1e-6, rtol: 1e-6, atol: 1e-8);
        Assert.Equal(rows * inF + outF, n);
    }

    [Fact]
    public void FrozenHalfPrecisionWeightsWork()
    {
        var lin = MakeLinear(4, 32, 5, bias: false, dtype: DType.BF16);
        var qat = new QatLinear(lin, QuantFormat.Q8_0);
        var x = new float[2 * 32];
        new Rng(3).FillGaussian(x, 0f, 1f);
        var y = new float[2 * 4];
        qat.Forward(x, y, 2);
        using var tape = new Tape();
        using var xt = Tensor.From<float>(x, [2, 32], "x");
        Assert.Equal(y, qat.Forward(tape, Variable.Constant(xt)).Value.ToFloatArray());
    }

    [Fact]
    public void AnInputDimensionOutsideTheBlockIsRefused()
    {
        var lin = MakeLinear(4, 40, 5, bias: false);
        var ex = Assert.Throws<ShapeException>(() => new QatLinear(lin, QuantFormat.Q4_0));
        Assert.Contains("layer", ex.Message);
        Assert.Throws<ShapeException>(() => new QatLinear(lin, QuantFormat.Int8).Forward(new float[10], new float[4], 1));
    }
}
