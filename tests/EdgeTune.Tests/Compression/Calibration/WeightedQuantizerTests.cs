using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Calibration;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression.Calibration;

public class WeightedQuantizerTests
{
    public static TheoryData<QuantFormat> Formats => new(QuantFormat.Q4_0, QuantFormat.Q8_0, QuantFormat.Int8, QuantFormat.NF4);

    private static float[] Gaussian(int n, ulong seed, float std = 1f)
    {
        var a = new float[n];
        new Rng(seed).FillGaussian(a, 0f, std);
        return a;
    }

    // log-normal importances spanning a few orders of magnitude, as activation statistics do
    private static float[] Importance(int n, ulong seed) => Gaussian(n, seed).Select(g => MathF.Exp(1.5f * g)).ToArray();

    [Theory, MemberData(nameof(Formats))]
    public void WeightedErrorNeverExceedsPlainRoundingAndIsLowerOverall(QuantFormat format)
    {
        int cols = 128, rows = 24;
        var a = Importance(cols, 1);
        double plainSum = 0, weightedSum = 0;
        var plain = new byte[format.RowBytes(cols)];
        var weighted = new byte[plain.Length];
        for (int r = 0; r < rows; r++)
        {
            var w = Gaussian(cols, 100 + (ulong)r, 0.05f);
            QuantReference.QuantizeRow(format, w, plain);
            WeightedQuantizer.QuantizeRow(format, w, a, weighted);
            double pe = WeightedQuantizer.WeightedError(format, w, a, plain);
            double we = WeightedQuantizer.WeightedError(format, w, a, weighted);
            Assert.True(we <= pe, $"row {r}: weighted {we} > plain {pe}");
            plainSum += pe;
            weightedSum += we;
        }
        Assert.True(weightedSum < 0.97 * plainSum, $"weighted {weightedSum} vs plain {plainSum}");
    }

    [Theory, MemberData(nameof(Formats))]
    public void ZeroImportanceMeansUniformAndStaysWithinPlainError(QuantFormat format)
    {
        int cols = 64;
        var w = Gaussian(cols, 7, 0.1f);
        w[0] = 0; w[5] = -0.8f;
        var zeros = new float[cols];
        var ones = Enumerable.Repeat(1f, cols).ToArray();
        var plain = new byte[format.RowBytes(cols)];
        var weighted = new byte[plain.Length];
        var uniform = new byte[plain.Length];
        QuantReference.QuantizeRow(format, w, plain);
        WeightedQuantizer.QuantizeRow(format, w, zeros, weighted);
        WeightedQuantizer.QuantizeRow(format, w, ones, uniform);
        Assert.Equal(uniform, weighted);
        Assert.True(WeightedQuantizer.WeightedError(format, w, ones, weighted) <= WeightedQuantizer.WeightedError(format, w, ones, plain));
        // an all-zero row stays the plain (zero) encoding
        var z = new byte[plain.Length];
        WeightedQuantizer.QuantizeRow(format, zeros, ones, z);
        QuantReference.QuantizeRow(format, zeros, plain);
        Assert.Equal(plain, z);
    }

    [Fact]
    public void LayerOutputErrorFallsWithActivationStatistics()
    {
        // inputs with a few loud channels: their weights matter most to the output
        int rows = 256, inF = 128, outF = 32;
        var scale = Gaussian(inF, 3).Select(g => MathF.Exp(g)).ToArray();
        var x = Gaussian(rows * inF, 4);
        for (int i = 0; i < rows; i++) for (int j = 0; j < inF; j++) x[i * inF + j] *= scale[j];
        var a = new float[inF];
        for (int i = 0; i < rows; i++) for (int j = 0; j < inF; j++) a[j] += x[i * inF + j] * x[i * inF + j] / rows;
        using var w = Tensor.From<float>(Gaussian(outF * inF, 5, 0.05f), [outF, inF], "w");
        var y = Output(x, w.ToFloatArray(), rows, inF, outF);
        foreach (var format in new[] { QuantFormat.Q4_0, QuantFormat.Q8_0, QuantFormat.NF4 })
        {
            using var plain = QuantizedMatrix.Quantize(w, format);
            using var weighted = WeightedQuantizer.Quantize(w, a, format);
            Assert.Equal(plain.ByteLength, weighted.ByteLength);
            double ep = Sq(y, Output(x, plain.Dequantize(), rows, inF, outF));
            double ew = Sq(y, Output(x, weighted.Dequantize(), rows, inF, outF));
            Assert.True(ew < 0.9 * ep, $"{format}: output error weighted {ew} vs plain {ep}");
        }
    }

    private static float[] Output(float[] x, float[] w, int rows, int inF, int outF)
    {
        var y = new float[rows * outF];
        Gemm.ABt(x, w, y, rows, inF, outF);
        return y;
    }

    private static double Sq(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return s;
    }

    [Fact]
    public void BadInputsAreRefused()
    {
        var w = new float[64];
        Assert.Throws<ShapeException>(() => WeightedQuantizer.QuantizeRow(QuantFormat.Q4_0, w, new float[63], new byte[36]));
        Assert.Throws<ShapeException>(() => WeightedQuantizer.QuantizeRow(QuantFormat.Q4_0, w, new float[64], new byte[35]));
        var neg = new float[64];
        neg[3] = -1;
        Assert.Throws<ArgumentException>(() => WeightedQuantizer.QuantizeRow(QuantFormat.Q4_0, w, neg, new byte[36]));
        using var t = Tensor.Zeros(DType.F32, [2, 64], "t");
        var ex = Assert.Throws<ShapeException>(() => WeightedQuantizer.Quantize(t, new float[32], QuantFormat.Q8_0));
        Assert.Contains("'t'", ex.Message);
    }
}
