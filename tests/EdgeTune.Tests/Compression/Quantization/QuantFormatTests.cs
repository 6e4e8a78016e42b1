using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Compression.Quantization;

public class QuantFormatTests(ITestOutputHelper output)
{
    public static TheoryData<QuantFormat> Formats => new(Enum.GetValues<QuantFormat>());

    private static float[] Gaussian(int n, ulong seed, float std = 0.02f)
    {
        var w = new float[n];
        new Rng(seed).FillGaussian(w, 0, std);
        return w;
    }

    private static double RelativeRms(float[] a, float[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (double)(a[i] - b[i]) * (a[i] - b[i]); den += (double)b[i] * b[i]; }
        return Math.Sqrt(num / den);
    }

    [Theory, MemberData(nameof(Formats))]
    public void GaussianWeightsStayWithinTheErrorBudget(QuantFormat format)
    {
        // 64 rows of 1536 (NF4: 24 blocks per row; a row of 16384 crosses the 256-block scale group).
        foreach (var (rows, cols) in new[] { (64, 1536), (2, 64 * 300) })
        {
            var w = Gaussian(rows * cols, 11);
            using var q = QuantizedMatrix.Quantize(w, rows, cols, format, "w");
            double err = RelativeRms(q.Dequantize(), w);
            output.WriteLine($"{format} [{rows},{cols}]: relative rms error {err:F5} (budget {format.Info().RelativeRmsErrorBudget})");
            Assert.True(err <= format.Info().RelativeRmsErrorBudget, $"{format}: {err} > {format.Info().RelativeRmsErrorBudget}");
            Assert.True(err > format.Info().RelativeRmsErrorBudget / 2, $"{format}: budget {format.Info().RelativeRmsErrorBudget} is loose against {err}");
        }
    }

    [Theory, MemberData(nameof(Formats))]
    public void RequantizingDequantizedWeightsIsIdempotent(QuantFormat format)
    {
        int rows = 5, cols = 192;
        var w = Gaussian(rows * cols, 12, 1f);
        using var q1 = QuantizedMatrix.Quantize(w, rows, cols, format);
        var d1 = q1.Dequantize();
        using var q2 = QuantizedMatrix.Quantize(d1, rows, cols, format);
        var d2 = q2.Dequantize();
        // Float scales re-derived from decoded values may move by an ulp or so; values stay put.
        for (int i = 0; i < d1.Length; i++)
            Assert.True(Math.Abs(d1[i] - d2[i]) <= 1e-3f * Math.Abs(d1[i]) + 1e-6f, $"{format} element {i}: {d1[i]} then {d2[i]}");
    }

    [Theory, MemberData(nameof(Formats))]
    public void RowsAreSelfContained(QuantFormat format)
    {
        int rows = 6, cols = 128;
        var w = Gaussian(rows * cols, 13);
        using var q = QuantizedMatrix.Quantize(w, rows, cols, format);
        var all = q.Dequantize();
        var one = new float[2 * cols];
        q.DequantizeRows(3, 2, one);
        Assert.Equal(all.AsSpan(3 * cols, 2 * cols).ToArray(), one);
        var row = new float[cols];
        QuantReference.DequantizeRow(format, q.Row(4), row);
        Assert.Equal(all.AsSpan(4 * cols, cols).ToArray(), row);
        Assert.Equal(rows * format.RowBytes(cols), q.Bytes.Length);
    }

    [Theory, MemberData(nameof(Formats))]
    public void ZeroAndConstantRowsRoundTrip(QuantFormat format)
    {
        int cols = 128;
        var zero = new float[cols];
        var bytes = new byte[format.RowBytes(cols)];
        QuantReference.QuantizeRow(format, zero, bytes);
        var back = new float[cols];
        QuantReference.DequantizeRow(format, bytes, back);
        Assert.All(back, v => Assert.Equal(0f, v));
        var ones = Enumerable.Repeat(-0.5f, cols).ToArray();
        QuantReference.QuantizeRow(format, ones, bytes);
        QuantReference.DequantizeRow(format, bytes, back);
        Assert.All(back, v => Assert.Equal(-0.5f, v, 1e-3f));
    }

    [Fact]
    public void Nf4CodesMapToTheNearestCodeBookValue()
    {
        var book = QuantReference.Nf4CodeBook;
        Assert.Equal(16, book.Length);
        Assert.Equal(0f, book[7]);
        for (int c = 0; c < 16; c++) Assert.Equal(c, QuantReference.Nf4Nearest(book[c], book));
        var rng = new Rng(5);
        for (int t = 0; t < 2000; t++)
        {
            float x = rng.NextFloat() * 2.4f - 1.2f;
            int best = 0;
            for (int c = 1; c < 16; c++) if (Math.Abs(book[c] - x) < Math.Abs(book[best] - x)) best = c;
            Assert.Equal(best, QuantReference.Nf4Nearest(x, book));
        }
    }

    [Fact]
    public void Nf4RowSizeCountsCodesScalesAndGroupHeaders()
    {
        Assert.Equal(32 + 1 + 8, QuantFormat.NF4.RowBytes(64));
        Assert.Equal(8192 + 256 + 8, QuantFormat.NF4.RowBytes(16384));
        Assert.Equal(8224 + 257 + 16, QuantFormat.NF4.RowBytes(16384 + 64));
        Assert.Equal(4.140625, QuantFormat.NF4.BitsPerWeight(4096));
        Assert.Equal(8.5, QuantFormat.Q8_0.BitsPerWeight(64));
        Assert.Equal(4.5, QuantFormat.Q4_0.BitsPerWeight(64));
    }

    [Theory, MemberData(nameof(Formats))]
    public void BadInputIsRejected(QuantFormat format)
    {
        int block = format.Info().BlockSize;
        if (block > 1)
        {
            Assert.Throws<ArgumentException>(() => format.RowBytes(block + 1));
            Assert.Throws<ArgumentException>(() => QuantizedMatrix.Quantize(new float[2 * (block + 1)], 2, block + 1, format));
        }
        Assert.Throws<ArgumentException>(() => format.RowBytes(0));
        int cols = 64;
        Assert.Throws<ShapeException>(() => QuantReference.QuantizeRow(format, new float[cols], new byte[format.RowBytes(cols) - 1]));
        Assert.Throws<ShapeException>(() => QuantReference.DequantizeRow(format, new byte[format.RowBytes(cols) + 1], new float[cols]));
        Assert.Throws<ShapeException>(() => QuantizedMatrix.Quantize(new float[10], 2, cols, format));
        using var wrong = Tensor.Zeros(DType.U8, [3 * format.RowBytes(cols) - 1]);
        Assert.Throws<ShapeException>(() => QuantizedMatrix.FromStorage(format, 3, cols, wrong));
        Assert.Throws<ArgumentException>(() => QuantFormats.Parse("q5_k"));
        Assert.Equal(format, QuantFormats.Parse(format.Info().Name.ToUpperInvariant()));
    }
}
