using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class AttentionTests
{
    // (B, T, Hq, Hkv, D, window)
    public static TheoryData<int, int, int, int, int, int> Shapes => new()
    {
        { 1, 1, 1, 1, 8, 0 },
        { 2, 7, 2, 2, 6, 0 },
        { 1, 33, 4, 1, 8, 0 },
        { 2, 33, 4, 2, 6, 0 },
        { 1, 20, 2, 1, 5, 6 },
        { 1, 70, 1, 1, 16, 0 },
    };

    // (query tile, key tile): the defaults and odd sizes that straddle T = 7, 33, 70
    private static readonly (int Bq, int Bk)[] Tiles = [(Attention.BlockQ, Attention.BlockK), (4, 8), (5, 3), (1, 1)];

    private delegate void Runner(float[] q, float[] k, float[] v, float[] o, float[] lse, int b, int t, int hq, int hkv, int d, float scale, int window, int bq, int bk);
    private delegate void BackRunner(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, float[] dq, float[] dk, float[] dv,
        int b, int t, int hq, int hkv, int d, float scale, int window, int bq, int bk);

    private static IEnumerable<(string Name, Runner Fwd, BackRunner Bwd)> Widths()
    {
        if (V512.IsAccelerated) yield return ("V512", (q, k, v, o, l, b, t, hq, hkv, d, s, w, bq, bk) => Attention.DecodeCore<V512>(q, k, v, o, l, b, t, 0, t, hq, hkv, d, s, w, bq, bk),
            (q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk) => Attention.BackwardCore<V512>(q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk));
        if (V256.IsAccelerated) yield return ("V256", (q, k, v, o, l, b, t, hq, hkv, d, s, w, bq, bk) => Attention.DecodeCore<V256>(q, k, v, o, l, b, t, 0, t, hq, hkv, d, s, w, bq, bk),
            (q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk) => Attention.BackwardCore<V256>(q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk));
        // V128 runs everywhere (software-emulated where not accelerated), so it is always checked.
        yield return ("V128", (q, k, v, o, l, b, t, hq, hkv, d, s, w, bq, bk) => Attention.DecodeCore<V128>(q, k, v, o, l, b, t, 0, t, hq, hkv, d, s, w, bq, bk),
            (q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk) => Attention.BackwardCore<V128>(q, k, v, o, l, dO, dq, dk, dv, b, t, hq, hkv, d, s, w, bq, bk));
    }

    private static (double[] Q, double[] K, double[] V) Inputs(ulong seed, int b, int t, int hq, int hkv, int d) =>
        (Gaussian(seed, b * t * hq * d), Gaussian(seed + 1, b * t * hkv * d), Gaussian(seed + 2, b * t * hkv * d));

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ForwardMatchesReferenceAtEveryWidthAndTile(int b, int t, int hq, int hkv, int d, int window)
    {
        var (q, k, v) = Inputs(11, b, t, hq, hkv, d);
        double scale = 1 / Math.Sqrt(d);
        var refOut = new double[q.Length];
        var refLse = new double[b * hq * t];
        AttentionReference.Forward<double>(q, k, v, refOut, refLse, b, t, hq, hkv, d, scale, window);
        foreach (var (name, fwd, _) in Widths())
            foreach (var (bq, bk) in Tiles)
            {
                var o = new float[q.Length];
                var lse = new float[refLse.Length];
                fwd(ToFloat(q), ToFloat(k), ToFloat(v), o, lse, b, t, hq, hkv, d, (float)scale, window, bq, bk);
                Close(refOut, o, 1e-4, 1e-5, $"{name} {bq}x{bk} out");
                Close(refLse, lse, 1e-5, 1e-5, $"{name} {bq}x{bk} lse");
            }
    }

    [Fact]
    public void PublicForwardUsesDefaultScaleAndMatchesReference()
    {
        int b = 2, t = 9, hq = 4, hkv = 2, d = 8;
        var (q, k, v) = Inputs(3, b, t, hq, hkv, d);
        var refOut = new double[q.Length];
        AttentionReference.Forward<double>(q, k, v, refOut, default, b, t, hq, hkv, d, 1 / Math.Sqrt(d));
        var o = new float[q.Length];
        Attention.Forward(ToFloat(q), ToFloat(k), ToFloat(v), o, default, b, t, hq, hkv, d);
        Close(refOut, o, 1e-4, 1e-5, "out");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackwardMatchesReferenceAtEveryWidthAndTile(int b, int t, int hq, int hkv, int d, int window)
    {
        var (q, k, v) = Inputs(21, b, t, hq, hkv, d);
        double[] dO = Gaussian(99, q.Length);
        double scale = 1 / Math.Sqrt(d);
        var rdq = new double[q.Length]; var rdk = new double[k.Length]; var rdv = new double[v.Length];
        AttentionReference.Backward<double>(q, k, v, dO, rdq, rdk, rdv, b, t, hq, hkv, d, scale, window);
        float[] qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v), dOf = ToFloat(dO);
        foreach (var (name, fwd, bwd) in Widths())
            foreach (var (bq, bk) in Tiles)
            {
                var o = new float[q.Length];
                var lse = new float[b * hq * t];
                fwd(qf, kf, vf, o, lse, b, t, hq, hkv, d, (float)scale, window, bq, bk);
                // gradients accumulate: start from 1 and subtract it afterwards
                var dq = Filled(q.Length, 1f); var dk = Filled(k.Length, 1f); var dv = Filled(v.Length, 1f);
                bwd(qf, kf, vf, o, lse, dOf, dq, dk, dv, b, t, hq, hkv, d, (float)scale, window, bq, bk);
                Close(rdq, Minus1(dq), 2e-4, 2e-4, $"{name} {bq}x{bk} dq");
                Close(rdk, Minus1(dk), 2e-4, 2e-4, $"{name} {bq}x{bk} dk");
                Close(rdv, Minus1(dv), 2e-4, 2e-4, $"{name} {bq}x{bk} dv");
            }
    }

    [Theory]
    [InlineData(1, 5, 2, 2, 3, 0)]
    [InlineData(2, 6, 4, 2, 2, 0)]
    [InlineData(1, 7, 2, 1, 3, 3)]
    public void ReferenceBackwardMatchesFiniteDifferences(int b, int t, int hq, int hkv, int d, int window)
    {
        var (q, k, v) = Inputs(5, b, t, hq, hkv, d);
        double[] g = Gaussian(77, q.Length);
        double scale = 0.7;
        double Loss(double[] qq, double[] kk, double[] vv)
        {
            var o = new double[qq.Length];
            AttentionReference.Forward<double>(qq, kk, vv, o, default, b, t, hq, hkv, d, scale, window);
            double s = 0;
            for (int i = 0; i < o.Length; i++) s += o[i] * g[i];
            return s;
        }
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        AttentionReference.Backward<double>(q, k, v, g, dq, dk, dv, b, t, hq, hkv, d, scale, window);
        GradCheck.Check("dq", x => Loss(x, k, v), q, dq, h: 1e-5, rtol: 1e-6, atol: 1e-8);
        GradCheck.Check("dk", x => Loss(q, x, v), k, dk, h: 1e-5, rtol: 1e-6, atol: 1e-8);
        GradCheck.Check("dv", x => Loss(q, k, x), v, dv, h: 1e-5, rtol: 1e-6, atol: 1e-8);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void DecodeWithCacheEqualsLastRowsOfFullForward(int window)
    {
        int b = 2, t = 37, hq = 4, hkv = 2, d = 8, capacity = 50;
        var (q, k, v) = Inputs(31, b, t, hq, hkv, d);
        float[] qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v);
        var full = new float[qf.Length];
        var fullLse = new float[b * hq * t];
        Attention.Forward(qf, kf, vf, full, fullLse, b, t, hq, hkv, d, window: window);
        // a cache of capacity 50 per sequence holding positions [0, t); garbage beyond
        var kc = Filled(b * capacity * hkv * d, float.NaN); var vc = Filled(kc.Length, float.NaN);
        int row = hkv * d;
        for (int bb = 0; bb < b; bb++)
        {
            Array.Copy(kf, bb * t * row, kc, bb * capacity * row, t * row);
            Array.Copy(vf, bb * t * row, vc, bb * capacity * row, t * row);
        }
        foreach (int newTokens in new[] { 1, 3 })
        {
            int start = t - newTokens, qrow = hq * d;
            var qn = new float[b * newTokens * qrow];
            for (int bb = 0; bb < b; bb++) Array.Copy(qf, (bb * t + start) * qrow, qn, bb * newTokens * qrow, newTokens * qrow);
            var o = new float[qn.Length];
            var lse = new float[b * hq * newTokens];
            Attention.Decode(qn, kc, vc, o, lse, b, newTokens, start, capacity, hq, hkv, d, window: window);
            for (int bb = 0; bb < b; bb++)
            {
                for (int i = 0; i < newTokens * qrow; i++)
                    Assert.Equal(full[(bb * t + start) * qrow + i], o[bb * newTokens * qrow + i], 1e-5f);
                for (int h = 0; h < hq; h++)
                    for (int i = 0; i < newTokens; i++)
                        Assert.Equal(fullLse[(bb * hq + h) * t + start + i], lse[(bb * hq + h) * newTokens + i], 1e-5f);
            }
        }
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(3, 0)]
    [InlineData(6, 0)]
    [InlineData(2, 4)]
    [InlineData(9, 4)]
    public void DecodeMatchesReferenceAtEveryWidth(int newTokens, int window)
    {
        int b = 2, start = 29, capacity = 48, hq = 6, hkv = 2, d = 8, used = start + newTokens;
        double[] q = Gaussian(51, b * newTokens * hq * d), kc = Gaussian(52, b * capacity * hkv * d), vc = Gaussian(53, kc.Length);
        double scale = 1 / Math.Sqrt(d);
        var refOut = new double[q.Length]; var refLse = new double[b * hq * newTokens];
        AttentionReference.Decode<double>(q, kc, vc, refOut, refLse, b, newTokens, start, capacity, hq, hkv, d, scale, window);
        float[] qf = ToFloat(q), kf = ToFloat(kc), vf = ToFloat(vc);
        for (int bb = 0; bb < b; bb++) // positions past the used part must never be read
            for (int i = used * hkv * d; i < capacity * hkv * d; i++) { kf[bb * capacity * hkv * d + i] = float.NaN; vf[bb * capacity * hkv * d + i] = float.NaN; }
        var runs = new List<(string, Action<float[], float[], int, int>)>();
        if (V512.IsAccelerated) runs.Add(("V512", (o, l, bq, bk) => Attention.DecodeCore<V512>(qf, kf, vf, o, l, b, newTokens, start, capacity, hq, hkv, d, (float)scale, window, bq, bk)));
        if (V256.IsAccelerated) runs.Add(("V256", (o, l, bq, bk) => Attention.DecodeCore<V256>(qf, kf, vf, o, l, b, newTokens, start, capacity, hq, hkv, d, (float)scale, window, bq, bk)));
        runs.Add(("V128", (o, l, bq, bk) => Attention.DecodeCore<V128>(qf, kf, vf, o, l, b, newTokens, start, capacity, hq, hkv, d, (float)scale, window, bq, bk)));
        foreach (var (name, run) in runs)
            foreach (var (bq, bk) in Tiles)
            {
                var o = new float[q.Length]; var l = new float[refLse.Length];
                run(o, l, bq, bk);
                Close(refOut, o, 1e-4, 1e-5, $"{name} {bq}x{bk} out");
                Close(refLse, l, 1e-5, 1e-5, $"{name} {bq}x{bk} lse");
            }
    }

    [Theory]
    [InlineData(2, 33, 4, 2, 6, 0)]
    [InlineData(1, 20, 4, 1, 5, 6)]
    public void BackwardSplitPerQueryHeadIsBitIdenticalToSplitPerKvHead(int b, int t, int hq, int hkv, int d, int window)
    {
        var (q, k, v) = Inputs(61, b, t, hq, hkv, d);
        float[] qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v), dO = ToFloat(Gaussian(62, q.Length));
        float scale = 1 / MathF.Sqrt(d);
        var o = new float[qf.Length]; var lse = new float[b * hq * t];
        Attention.DecodeCore<V128>(qf, kf, vf, o, lse, b, t, 0, t, hq, hkv, d, scale, window, 8, 8);
        float[][] Run(bool perHead)
        {
            var dq = Filled(qf.Length, 0.25f); var dk = Filled(kf.Length, 0.25f); var dv = Filled(vf.Length, 0.25f);
            Attention.BackwardCore<V128>(qf, kf, vf, o, lse, dO, dq, dk, dv, b, t, hq, hkv, d, scale, window, 8, 8, perHead);
            return [dq, dk, dv];
        }
        float[][] byKv = Run(false), byHead = Run(true);
        for (int i = 0; i < 3; i++) Assert.Equal(byKv[i], byHead[i]);
        var rdk = new double[k.Length];
        AttentionReference.Backward<double>(q, k, v, ToDouble(dO), new double[q.Length], rdk, new double[v.Length], b, t, hq, hkv, d, scale, window);
        Close(rdk, Array.ConvertAll(byHead[1], x => x - 0.25), 2e-4, 2e-4, "dk");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void ForwardIsBitIdenticalHoweverQueriesAreSplitIntoTasks(int window)
    {
        int b = 1, t = 45, hq = 2, hkv = 1, d = 8;
        var (q, k, v) = Inputs(71, b, t, hq, hkv, d);
        float[] qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v);
        float[] Run(int ranges, float[] lse)
        {
            var o = new float[qf.Length];
            Attention.DecodeCore<V128>(qf, kf, vf, o, lse, b, t, 0, t, hq, hkv, d, 0.3f, window, 4, 8, ranges);
            return o;
        }
        var lse1 = new float[b * hq * t];
        float[] whole = Run(1, lse1);
        foreach (int ranges in new[] { 2, 3, 12 })
        {
            var lse = new float[lse1.Length];
            Assert.Equal(whole, Run(ranges, lse));
            Assert.Equal(lse1, lse);
        }
        var refOut = new double[q.Length];
        AttentionReference.Forward<double>(q, k, v, refOut, default, b, t, hq, hkv, d, 0.3f, window);
        Close(refOut, whole, 1e-4, 1e-5, "out");
    }

    [Fact]
    public void BackwardIsDeterministic()
    {
        int b = 2, t = 40, hq = 4, hkv = 2, d = 8;
        var (q, k, v) = Inputs(41, b, t, hq, hkv, d);
        float[] qf = ToFloat(q), kf = ToFloat(k), vf = ToFloat(v), dO = ToFloat(Gaussian(42, q.Length));
        var o = new float[qf.Length]; var lse = new float[b * hq * t];
        Attention.Forward(qf, kf, vf, o, lse, b, t, hq, hkv, d);
        float[][] Run()
        {
            var dq = new float[qf.Length]; var dk = new float[kf.Length]; var dv = new float[vf.Length];
            Attention.Backward(qf, kf, vf, o, lse, dO, dq, dk, dv, b, t, hq, hkv, d);
            return [dq, dk, dv];
        }
        var first = Run();
        var second = Run();
        for (int i = 0; i < 3; i++) Assert.Equal(first[i], second[i]);
        Assert.Contains(first[1], x => x != 0f);
    }

    [Fact]
    public void BadShapesNameTheOpAndTensor()
    {
        var e = Assert.Throws<ShapeException>(() => Attention.Forward(new float[10], new float[16], new float[16], new float[16], default, 1, 2, 3, 2, 4));
        Assert.Contains("Hq = 3", e.Message);
        e = Assert.Throws<ShapeException>(() => Attention.Forward(new float[10], new float[16], new float[16], new float[16], default, 1, 2, 2, 2, 4));
        Assert.Contains("'q'", e.Message);
        e = Assert.Throws<ShapeException>(() => Attention.Decode(new float[8], new float[16], new float[16], new float[8], default, 1, 1, 4, 4, 2, 2, 4));
        Assert.Contains("capacity 4", e.Message);
        e = Assert.Throws<ShapeException>(() => Attention.Backward(new float[16], new float[16], new float[16], new float[16], new float[4], new float[16],
            new float[16], new float[15], new float[16], 1, 2, 2, 2, 4));
        Assert.Contains("'dk'", e.Message);
    }

    private static float[] Filled(int n, float value) { var a = new float[n]; Array.Fill(a, value); return a; }

    private static double[] Minus1(float[] x) => Array.ConvertAll(x, v => v - 1.0);
}
