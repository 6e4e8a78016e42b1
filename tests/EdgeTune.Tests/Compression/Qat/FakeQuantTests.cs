using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression.Qat;

public class FakeQuantTests
{
    public static TheoryData<QuantFormat> Formats => new(QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Int8, QuantFormat.NF4);

    private static float[] Gaussian(int n, ulong seed, float std = 0.05f)
    {
        var a = new float[n];
        new Rng(seed).FillGaussian(a, 0f, std);
        return a;
    }

    private static float[] RoundTrip(QuantFormat f, float[] w, int rows, int cols)
    {
        var m = QuantizedMatrix.Quantize(w, rows, cols, f);
        return m.Dequantize();
    }

    [Theory, MemberData(nameof(Formats))]
    public void WeightsEqualTheQuantizeDequantizeRoundTripExactly(QuantFormat format)
    {
        int rows = 5, cols = 2 * format.Info().BlockSize * (format == QuantFormat.Int8 ? 33 : 2);
        var w = Gaussian(rows * cols, 11);
        w[3] = 0.9f; // an outlier in one block
        var fq = new float[w.Length];
        FakeQuant.Weights(format, w, fq, rows, cols);
        Assert.Equal(RoundTrip(format, w, rows, cols), fq);
        Assert.NotEqual(w, fq);

        // in place, and through the generic path in double
        var inPlace = (float[])w.Clone();
        FakeQuant.Weights(format, inPlace, inPlace, rows, cols);
        Assert.Equal(fq, inPlace);
        var d = w.Select(x => (double)x).ToArray();
        var dq = new double[d.Length];
        FakeQuant.Weights<double>(format, d, dq, rows, cols);
        Assert.Equal(fq.Select(x => (double)x).ToArray(), dq);
    }

    [Fact]
    public void RowsNotAMultipleOfTheBlockAreRefused()
    {
        var w = new float[3 * 40];
        var ex = Assert.Throws<ShapeException>(() => FakeQuant.Weights(QuantFormat.Q4_0, w, w, 3, 40));
        Assert.Contains("32", ex.Message);
        Assert.Throws<ShapeException>(() => FakeQuant.Weights(QuantFormat.Q8_0, w, new float[5], 3, 40));
        Assert.False(FakeQuant.Supports(QuantFormat.Q4_0, 172));
        Assert.True(FakeQuant.Supports(QuantFormat.Int8, 172));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(4, 257)]
    public void ActivationsEqualTheInt8RowRoundTrip(int rows, int cols)
    {
        var x = Gaussian(rows * cols, (ulong)(rows * 1000 + cols), 1.5f);
        if (rows > 2) Array.Clear(x, cols, cols); // a zero row stays zero
        var y = new float[x.Length];
        FakeQuant.Activations<float>(x, y, rows, cols);
        Assert.Equal(RoundTrip(QuantFormat.Int8, x, rows, cols), y);
        for (int r = 0; r < rows; r++)
        {
            float amax = 0;
            for (int j = 0; j < cols; j++) amax = MathF.Max(amax, MathF.Abs(x[r * cols + j]));
            for (int j = 0; j < cols; j++) Assert.True(MathF.Abs(y[r * cols + j] - x[r * cols + j]) <= amax / 254f * 1.0001f);
        }
    }

    [Theory, MemberData(nameof(Formats))]
    public void OpForwardIsTheRoundTripAndBackwardIsTheIdentity(QuantFormat format)
    {
        int rows = 3, cols = 64;
        var w0 = Gaussian(rows * cols, 5);
        var c0 = Gaussian(rows * cols, 6, 1f);
        using var w = new Parameter("w", Tensor.From<float>(w0, [rows, cols], "w"));
        using var c = Tensor.From<float>(c0, [rows, cols], "c");
        using var tape = new Tape();
        var y = tape.FakeQuantize(w.Variable, format);
        Assert.Equal(RoundTrip(format, w0, rows, cols), y.Value.ToFloatArray());
        // loss = Σ c ⊙ fq(w): the straight-through gradient is exactly c
        tape.Backward(tape.Sum(tape.Mul(y, Variable.Constant(c))));
        Assert.Equal(c0, w.Grad!.ToFloatArray());
    }

    [Fact]
    public void ActivationOpBackwardIsTheIdentityAndAccumulates()
    {
        var x0 = Gaussian(4 * 9, 8, 1f);
        var c0 = Gaussian(4 * 9, 9, 1f);
        using var x = new Parameter("x", Tensor.From<float>(x0, [2, 2, 9], "x"));
        using var c = Tensor.From<float>(c0, [2, 2, 9], "c");
        for (int pass = 0; pass < 2; pass++)
        {
            using var tape = new Tape();
            var y = tape.FakeQuantizeActivations(x.Variable);
            var expect = new float[x0.Length];
            FakeQuant.Activations<float>(x0, expect, 4, 9);
            Assert.Equal(expect, y.Value.ToFloatArray());
            tape.Backward(tape.Sum(tape.Mul(y, Variable.Constant(c))));
        }
        Assert.Equal(c0.Select(v => 2 * v).ToArray(), x.Grad!.ToFloatArray());
    }

    [Fact]
    public void NonFloatAndWrongRankInputsAreRefused()
    {
        using var tape = new Tape();
        using var ids = Tensor.Zeros(DType.I32, [2, 32], "ids");
        Assert.Throws<ShapeException>(() => tape.FakeQuantize(Variable.Constant(ids), QuantFormat.Q8_0));
        using var v = Tensor.Zeros(DType.F32, [32], "v");
        Assert.Throws<ShapeException>(() => tape.FakeQuantize(Variable.Constant(v), QuantFormat.Q8_0));
        using var odd = Tensor.Zeros(DType.F32, [2, 40], "odd");
        Assert.Throws<ShapeException>(() => tape.FakeQuantize(Variable.Constant(odd), QuantFormat.Q4_0));
    }
}
