using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public class RopePermutationTests
{
    private static float[] Random(int n, ulong seed)
    {
        var r = new Rng(seed);
        var a = new float[n];
        r.FillUniform(a, -1, 1);
        return a;
    }

    [Theory]
    [InlineData(4, 8, 5)]
    [InlineData(1, 2, 1)]
    [InlineData(3, 6, 7)]
    public void HfToGgufAndBackAreInverse(int heads, int headDim, int cols)
    {
        using var w = Tensor.From<float>(Random(heads * headDim * cols, 7), [heads * headDim, cols], "q");
        using var g = RopePermutation.HfToGguf(w, heads);
        using var back = RopePermutation.GgufToHf(g, heads);
        Assert.Equal(w.ToFloatArray(), back.ToFloatArray());
        if (headDim > 2) Assert.NotEqual(w.ToFloatArray(), g.ToFloatArray());
        for (int r = 0; r < heads * headDim; r++)
            Assert.Equal(r, RopePermutation.GgufRowToHf(RopePermutation.HfRowToGguf(r, headDim), headDim));
    }

    [Fact]
    public void MatchesLlamaCppPermuteOnSmallExample()
    {
        // One head of 4 rows: HF rows [a0 a1 | b0 b1] pair (a_i, b_i); GGUF interleaves them as a0 b0 a1 b1.
        using var w = Tensor.From<float>([10, 11, 20, 21], [4], "bias");
        using var g = RopePermutation.HfToGguf(w, 1);
        Assert.Equal([10f, 20, 11, 21], g.ToFloatArray());
    }

    [Fact]
    public void WorksOnBf16AndBlockQuantizedRows()
    {
        using var w = Tensor.From<float>(Random(8 * 64, 3), [8, 64], "k");
        using var q = GgufQuant.Quantize(w, DType.Q8_0);
        using var bf = w.To(DType.BF16);
        foreach (var t in new[] { q, bf })
        {
            using var g = RopePermutation.HfToGguf(t, 2);
            using var back = RopePermutation.GgufToHf(g, 2);
            Assert.Equal(t.Bytes.ToArray(), back.Bytes.ToArray());
        }
        using var gq = RopePermutation.HfToGguf(q, 2);
        using var gf = RopePermutation.HfToGguf(w, 2);
        using var dq = GgufQuant.ToFloat32(gq);
        using var qf = GgufQuant.ToFloat32(GgufQuant.Quantize(gf, DType.Q8_0));
        Assert.Equal(qf.ToFloatArray(), dq.ToFloatArray()); // a row's blocks travel with the row
    }

    private static void RopeHalfSplit(Span<float> v, int heads, int d, int pos)
    {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < d / 2; i++)
            {
                double th = pos * Math.Pow(10000, -2.0 * i / d);
                float c = (float)Math.Cos(th), s = (float)Math.Sin(th);
                float a = v[h * d + i], b = v[h * d + i + d / 2];
                v[h * d + i] = a * c - b * s;
                v[h * d + i + d / 2] = a * s + b * c;
            }
    }

    private static void RopeInterleaved(Span<float> v, int heads, int d, int pos)
    {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < d / 2; i++)
            {
                double th = pos * Math.Pow(10000, -2.0 * i / d);
                float c = (float)Math.Cos(th), s = (float)Math.Sin(th);
                float a = v[h * d + 2 * i], b = v[h * d + 2 * i + 1];
                v[h * d + 2 * i] = a * c - b * s;
                v[h * d + 2 * i + 1] = a * s + b * c;
            }
    }

    [Theory]
    [InlineData(4, 8, 16, 3)]  // q: 4 heads
    [InlineData(2, 8, 16, 11)] // k: 2 KV heads (GQA)
    public void InterleavedRopeOnPermutedWeightsEqualsHalfSplitRope(int heads, int d, int cols, int pos)
    {
        int rows = heads * d;
        float[] wHf = Random(rows * cols, 11), x = Random(cols, 12);
        using var hf = Tensor.From<float>(wHf, [rows, cols], "w");
        using var gg = RopePermutation.HfToGguf(hf, heads);
        float[] wGg = gg.ToFloatArray();
        var yHf = new float[rows];
        var yGg = new float[rows];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) { yHf[r] += wHf[r * cols + c] * x[c]; yGg[r] += wGg[r * cols + c] * x[c]; }
        RopeHalfSplit(yHf, heads, d, pos);
        RopeInterleaved(yGg, heads, d, pos);
        for (int r = 0; r < rows; r++)
            Assert.Equal(yHf[r], yGg[RopePermutation.HfRowToGguf(r, d)], 5);
    }

    [Fact]
    public void RejectsRowsThatDoNotSplitIntoHeads()
    {
        using var w = Tensor.Zeros(DType.F32, [12, 4], "q_proj");
        Assert.Contains("q_proj", Assert.Throws<ShapeException>(() => RopePermutation.HfToGguf(w, 5)).Message);
        Assert.Throws<ShapeException>(() => RopePermutation.HfToGguf(w, 4)); // head size 3 is odd
        using var c = RopePermutation.Convert(w, 3, RopeStyle.HalfSplit, RopeStyle.HalfSplit);
        Assert.Equal(w.ToFloatArray(), c.ToFloatArray());
    }
}
