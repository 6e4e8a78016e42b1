using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>The encoder's ops (masked bidirectional attention, mean pooling, L2 normalisation): F64 against central
/// differences, F32 against F64, the fast attention kernel against its scalar reference, and what the mask means.</summary>
public class EncoderOpTests
{
    // batch 2, time 5 (the second sequence padded after 3 tokens), 3 heads of 4
    private static readonly int[] Mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];

    [Theory]
    [InlineData(true, true, true)]
    [InlineData(true, false, true)]
    [InlineData(false, true, false)]
    public void MaskedAttentionGradients(bool qTrainable, bool kTrainable, bool vTrainable)
    {
        var rng = new Rng(31);
        using var q = GradCheck.Param("q", [10, 12], rng, qTrainable);
        using var k = GradCheck.Param("k", [10, 12], rng, kTrainable);
        using var v = GradCheck.Param("v", [10, 12], rng, vTrainable);
        int n = OpCheck.Run([q, k, v], (t, p) => t.MaskedAttention(p[0].Variable, p[1].Variable, p[2].Variable, Mask, 2, 5, 3, 4));
        Assert.Equal(120 * ((qTrainable ? 1 : 0) + (kTrainable ? 1 : 0) + (vTrainable ? 1 : 0)), n);
    }

    [Fact]
    public void PaddedKeysGetNoWeightAndDoNotChangeTheOutput()
    {
        var rng = new Rng(32);
        using var q = GradCheck.Param("q", [10, 12], rng);
        using var k = GradCheck.Param("k", [10, 12], rng);
        using var v = GradCheck.Param("v", [10, 12], rng);
        using var tape = new Tape { IsRecording = false };
        var y = tape.MaskedAttention(q.Variable, k.Variable, v.Variable, Mask, 2, 5, 3, 4).Value.ReadOnlySpan<double>().ToArray();
        // change the padded keys and values of sequence 1: nothing its queries see moves
        foreach (var p in new[] { k, v })
            for (int i = 8 * 12; i < 10 * 12; i++) p.Value.Span<double>()[i] += 5;
        var y2 = tape.MaskedAttention(q.Variable, k.Variable, v.Variable, Mask, 2, 5, 3, 4).Value.ReadOnlySpan<double>().ToArray();
        Assert.Equal(y, y2);
        // bidirectional: the first query of sequence 0 depends on its last key
        k.Value.Span<double>()[4 * 12] += 1;
        var y3 = tape.MaskedAttention(q.Variable, k.Variable, v.Variable, Mask, 2, 5, 3, 4).Value.ReadOnlySpan<double>().ToArray();
        Assert.NotEqual(y[0], y3[0]);
    }

    [Theory]
    [InlineData(3, 17, 5, 7)]
    [InlineData(1, 1, 1, 3)]
    [InlineData(4, 33, 2, 16)]
    public void FastKernelMatchesTheScalarReference(int batch, int time, int heads, int dim)
    {
        var rng = new Rng((ulong)(batch * 1000 + time));
        int n = batch * time * heads * dim;
        float[] Rand() { var a = new float[n]; rng.FillGaussian(a, 0, 1); return a; }
        float[] q = Rand(), k = Rand(), v = Rand(), dOut = Rand();
        var mask = new int[batch * time];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < time; t++) mask[b * time + t] = t < Math.Max(1, time - b * 3) ? 1 : 0;
        var y = new float[n];
        var p = new float[batch * heads * time * time];
        MaskedAttention.Forward(q, k, v, mask, y, p, batch, time, heads, dim, 0.37f);
        var yr = new float[n];
        var pr = new float[p.Length];
        MaskedAttentionReference.Forward<float>(q, k, v, mask, yr, pr, batch, time, heads, dim, 0.37);
        for (int i = 0; i < n; i++) Assert.Equal(yr[i], y[i], 1e-5f);

        float[] dq = new float[n], dk = new float[n], dv = new float[n], dqr = new float[n], dkr = new float[n], dvr = new float[n];
        MaskedAttention.Backward(q, k, v, p, dOut, dq, dk, dv, batch, time, heads, dim, 0.37f);
        MaskedAttentionReference.Backward<float>(q, k, v, pr, dOut, dqr, dkr, dvr, batch, time, heads, dim, 0.37);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(dqr[i], dq[i], 1e-4f);
            Assert.Equal(dkr[i], dk[i], 1e-4f);
            Assert.Equal(dvr[i], dv[i], 1e-4f);
        }
    }

    [Fact]
    public void AMaskThatAttendsToNothingIsRefused()
    {
        using var q = GradCheck.Param("q", [4, 6], new Rng(33));
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.MaskedAttention(q.Variable, q.Variable, q.Variable, [1, 1, 0, 0], 2, 2, 2, 3));
        Assert.Contains("sequence 1 attends to no key", e.Message);
    }

    [Fact]
    public void MeanPoolGradientsAndValues()
    {
        var rng = new Rng(34);
        using var x = GradCheck.Param("x", [10, 6], rng, scale: 2);
        int n = OpCheck.Run([x], (t, p) => t.MeanPool(p[0].Variable, Mask, 2, 5));
        Assert.Equal(60, n);
        using var tape = new Tape { IsRecording = false };
        var y = tape.MeanPool(x.Variable, Mask, 2, 5).Value.ReadOnlySpan<double>();
        var xs = x.Value.ReadOnlySpan<double>();
        Assert.Equal((xs[5 * 6 + 2] + xs[6 * 6 + 2] + xs[7 * 6 + 2]) / 3, y[6 + 2], 12);
    }

    [Fact]
    public void L2NormalizeGradientsAndUnitRows()
    {
        var rng = new Rng(35);
        using var x = GradCheck.Param("x", [4, 7], rng, scale: 3);
        Assert.Equal(28, OpCheck.Run([x], (t, p) => t.L2Normalize(p[0].Variable)));
        using var tape = new Tape { IsRecording = false };
        var y = tape.L2Normalize(x.Variable).Value.ReadOnlySpan<double>();
        for (int r = 0; r < 4; r++)
        {
            double ss = 0;
            for (int c = 0; c < 7; c++) ss += y[r * 7 + c] * y[r * 7 + c];
            Assert.Equal(1.0, ss, 12);
        }
    }
}
