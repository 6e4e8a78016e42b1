using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class CrossEntropyTests
{
    private delegate void Fwd(float[] logits, int[] targets, float[] lse, float[] loss, int rows, int vocab);
    private delegate void Bwd(float[] logits, int[] targets, float[] lse, float[] g, int rows, int vocab, float scale, bool acc);

    private static IEnumerable<(string Name, Fwd F, Bwd B)> Widths()
    {
        if (V512.IsAccelerated) yield return ("V512", (l, t, s, o, n, v) => CrossEntropy.ForwardCore<V512>(l, t, s, o, n, v),
            (l, t, s, g, n, v, sc, a) => CrossEntropy.BackwardCore<V512>(l, t, s, g, n, v, sc, a));
        if (V256.IsAccelerated) yield return ("V256", (l, t, s, o, n, v) => CrossEntropy.ForwardCore<V256>(l, t, s, o, n, v),
            (l, t, s, g, n, v, sc, a) => CrossEntropy.BackwardCore<V256>(l, t, s, g, n, v, sc, a));
        yield return ("V128", (l, t, s, o, n, v) => CrossEntropy.ForwardCore<V128>(l, t, s, o, n, v),
            (l, t, s, g, n, v, sc, a) => CrossEntropy.BackwardCore<V128>(l, t, s, g, n, v, sc, a));
    }

    private static int[] Targets(ulong seed, int rows, int vocab, bool withIgnored)
    {
        var rng = new Rng(seed);
        var t = new int[rows];
        for (int r = 0; r < rows; r++) t[r] = withIgnored && r % 3 == 1 ? CrossEntropy.IgnoreIndex : rng.NextInt(vocab);
        return t;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 7)]
    [InlineData(20, 33)]
    [InlineData(3, 257)]
    [InlineData(35, 1000)]
    public void LogitsForwardAndBackwardMatchReferenceAtEveryWidth(int rows, int vocab)
    {
        double[] logits = Gaussian(1, rows * vocab, 3);
        int[] targets = Targets(2, rows, vocab, withIgnored: rows > 1);
        var rLse = new double[rows]; var rLoss = new double[rows];
        var (rSum, rCount) = CrossEntropyReference.Forward<double>(logits, targets, rLse, rows, vocab, rLoss);
        var rGrad = new double[rows * vocab];
        double scale = 1.0 / Math.Max(1, rCount);
        CrossEntropyReference.Backward<double>(logits, targets, rLse, rGrad, rows, vocab, scale, accumulate: false);
        float[] lf = ToFloat(logits);
        foreach (var (name, f, b) in Widths())
        {
            var lse = new float[rows]; var loss = new float[rows];
            f(lf, targets, lse, loss, rows, vocab);
            Close(rLse, lse, 1e-5, 1e-5, name + " lse");
            Close(rLoss, loss, 1e-5, 1e-5, name + " loss");
            var g = new float[rows * vocab];
            Array.Fill(g, 0.5f);
            b(lf, targets, lse, g, rows, vocab, (float)scale, true);
            var expected = Array.ConvertAll(rGrad, x => x + 0.5);
            for (int r = 0; r < rows; r++) // ignored rows are left alone when accumulating
                if (targets[r] == CrossEntropy.IgnoreIndex) Assert.Equal(0.0, rGrad.AsSpan(r * vocab, vocab).ToArray().Sum());
            Close(expected, g, 1e-5, 1e-6, name + " dlogits (accumulate)");
            Array.Fill(g, 0.5f);
            b(lf, targets, lse, g, rows, vocab, (float)scale, false);
            Close(rGrad, g, 1e-5, 1e-6, name + " dlogits (overwrite)");
        }
        var pubLse = new float[rows];
        var result = CrossEntropy.Forward(lf, targets, pubLse, rows, vocab);
        Assert.Equal(rCount, result.Count);
        Assert.Equal(rSum, result.LossSum, 1e-4 * rows);
        Assert.Equal(rCount == 0 ? 0 : rSum / rCount, result.Mean, 1e-4);
    }

    [Fact]
    public void IgnoredRowsAddNothing()
    {
        int rows = 4, vocab = 6;
        float[] logits = ToFloat(Gaussian(3, rows * vocab));
        int[] targets = [2, CrossEntropy.IgnoreIndex, 5, CrossEntropy.IgnoreIndex];
        var loss = new float[rows];
        var all = CrossEntropy.Forward(logits, targets, new float[rows], rows, vocab, loss);
        Assert.Equal(2, all.Count);
        Assert.Equal(0f, loss[1]);
        Assert.Equal(0f, loss[3]);
        var only = CrossEntropy.Forward(logits.AsSpan(2 * vocab, vocab), [5], new float[1], 1, vocab);
        var first = CrossEntropy.Forward(logits.AsSpan(0, vocab), [2], new float[1], 1, vocab);
        Assert.Equal(only.LossSum + first.LossSum, all.LossSum, 1e-6);
        var none = CrossEntropy.Forward(logits, [CrossEntropy.IgnoreIndex, CrossEntropy.IgnoreIndex, CrossEntropy.IgnoreIndex, CrossEntropy.IgnoreIndex], new float[rows], rows, vocab);
        Assert.Equal(0, none.Count);
        Assert.Equal(0.0, none.Mean);
    }

    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        int rows = 4, vocab = 5;
        double[] logits = Gaussian(4, rows * vocab, 2);
        int[] targets = [1, CrossEntropy.IgnoreIndex, 4, 0];
        double Loss(double[] l) { var (s, c) = CrossEntropyReference.Forward<double>(l, targets, new double[rows], rows, vocab); return s / c; }
        var lse = new double[rows];
        CrossEntropyReference.Forward<double>(logits, targets, lse, rows, vocab);
        var g = new double[rows * vocab];
        CrossEntropyReference.Backward<double>(logits, targets, lse, g, rows, vocab, 1.0 / 3);
        GradCheck.Check("dlogits", Loss, logits, g, h: 1e-5, rtol: 1e-6, atol: 1e-9);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(50)]
    [InlineData(CrossEntropy.DefaultChunk)]
    public void ChunkedLmHeadMatchesUnchunkedReference(int chunk)
    {
        int rows = 9, channels = 7, vocab = 37;
        double[] x = Gaussian(5, rows * channels), w = Gaussian(6, vocab * channels, 0.5);
        int[] targets = Targets(7, rows, vocab, withIgnored: true);
        var rLse = new double[rows]; var rLoss = new double[rows];
        var (rSum, rCount) = CrossEntropyReference.LmHeadForward<double>(x, w, targets, rLse, rows, channels, vocab, rLoss);
        var rdx = new double[x.Length]; var rdw = new double[w.Length];
        double scale = 1.0 / rCount;
        CrossEntropyReference.LmHeadBackward<double>(x, w, targets, rLse, rdx, rdw, rows, channels, vocab, scale);
        float[] xf = ToFloat(x), wf = ToFloat(w);
        var lse = new float[rows]; var loss = new float[rows];
        var result = CrossEntropy.LmHeadForward<float>(xf, wf, targets, lse, rows, channels, vocab, chunk, loss);
        Assert.Equal(rCount, result.Count);
        Assert.Equal(rSum, result.LossSum, 1e-4);
        Close(rLse, lse, 1e-5, 1e-5, "lse");
        Close(rLoss, loss, 1e-5, 1e-5, "rowLoss");
        var dx = new float[x.Length]; var dw = new float[w.Length];
        Array.Fill(dx, 1f); Array.Fill(dw, 1f);
        CrossEntropy.LmHeadBackward<float>(xf, wf, targets, lse, dx, dw, rows, channels, vocab, (float)scale, chunk);
        Close(rdx, Array.ConvertAll(dx, v => v - 1.0), 1e-4, 1e-6, "dx");
        Close(rdw, Array.ConvertAll(dw, v => v - 1.0), 1e-4, 1e-6, "dW");
        // a frozen head: no dW
        var dx2 = new float[x.Length];
        CrossEntropy.LmHeadBackward<float>(xf, wf, targets, lse, dx2, default, rows, channels, vocab, (float)scale, chunk);
        Close(rdx, dx2, 1e-4, 1e-6, "dx (frozen head)");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(CrossEntropy.DefaultChunk)]
    public void LmHeadForwardMakesTheFrozenHeadInputGradientInOnePass(int chunk)
    {
        // Odd sizes, ignored rows, logits whose max moves between chunks (a wide weight scale), every weight format.
        int rows = 11, channels = 13, vocab = 53;
        double[] x = Gaussian(21, rows * channels), w = Gaussian(22, vocab * channels, 2.0);
        int[] targets = Targets(23, rows, vocab, withIgnored: true);
        var rLse = new double[rows];
        CrossEntropyReference.LmHeadForward<double>(x, w, targets, rLse, rows, channels, vocab);
        var rdx = new double[x.Length];
        CrossEntropyReference.LmHeadBackward<double>(x, w, targets, rLse, rdx, new double[w.Length], rows, channels, vocab, 1.0);
        float[] xf = ToFloat(x), wf = ToFloat(w);
        var lse = new float[rows]; var loss = new float[rows];
        var g = new float[x.Length];
        Array.Fill(g, 7f); // overwritten, not accumulated
        var result = CrossEntropy.LmHeadForward<float>(xf, wf, targets, lse, rows, channels, vocab, chunk, loss, g);
        var plain = CrossEntropy.LmHeadForward<float>(xf, wf, targets, new float[rows], rows, channels, vocab, chunk);
        Assert.Equal(plain.LossSum, result.LossSum, 1e-4);
        Close(rLse, lse, 1e-5, 1e-5, "lse");
        Close(rdx, g, 1e-4, 1e-5, "input gradient (F32 head)");
        for (int r = 0; r < rows; r++)
            if (targets[r] == CrossEntropy.IgnoreIndex)
                for (int c = 0; c < channels; c++) Assert.Equal(0f, g[r * channels + c]);

        // every vector width's core
        var widths = new List<(string, Action<float[], float[]>)> { ("V128", (l, gg) => CrossEntropy.LmHeadForwardCore<V128, float>(xf, wf, targets, l, new float[rows], rows, channels, vocab, chunk, gg)) };
        if (V256.IsAccelerated) widths.Add(("V256", (l, gg) => CrossEntropy.LmHeadForwardCore<V256, float>(xf, wf, targets, l, new float[rows], rows, channels, vocab, chunk, gg)));
        if (V512.IsAccelerated) widths.Add(("V512", (l, gg) => CrossEntropy.LmHeadForwardCore<V512, float>(xf, wf, targets, l, new float[rows], rows, channels, vocab, chunk, gg)));
        foreach (var (name, core) in widths)
        {
            var gw = new float[x.Length];
            core(new float[rows], gw);
            Close(rdx, gw, 1e-4, 1e-5, name + " input gradient");
        }

        // F16 / BF16 heads against the recomputing backward on the same stored weights
        var wh = Array.ConvertAll(wf, v => (Half)v);
        var wb = new ushort[wf.Length];
        BFloat16.FromSingle(wf, wb);
        var gh = new float[x.Length]; var dxh = new float[x.Length];
        CrossEntropy.LmHeadForward<Half>(xf, wh, targets, lse, rows, channels, vocab, chunk, default, gh);
        CrossEntropy.LmHeadBackward<Half>(xf, wh, targets, lse, dxh, default, rows, channels, vocab, 1f, chunk);
        for (int i = 0; i < gh.Length; i++) Assert.Equal(dxh[i], gh[i], 1e-4f);
        var gb = new float[x.Length]; var dxb = new float[x.Length];
        CrossEntropy.LmHeadForward<ushort>(xf, wb, targets, lse, rows, channels, vocab, chunk, default, gb);
        CrossEntropy.LmHeadBackward<ushort>(xf, wb, targets, lse, dxb, default, rows, channels, vocab, 1f, chunk);
        for (int i = 0; i < gb.Length; i++) Assert.Equal(dxb[i], gb[i], 1e-4f);
    }

    [Fact]
    public void QuantizedLmHeadForwardMakesTheInputGradientInOnePass()
    {
        int rows = 9, channels = 64, vocab = 41;
        float[] x = ToFloat(Gaussian(31, rows * channels)), w = ToFloat(Gaussian(32, vocab * channels, 0.5));
        int[] targets = Targets(33, rows, vocab, withIgnored: true);
        foreach (var format in new[] { EdgeTune.Tensors.Quantized.QuantFormat.Q8_0, EdgeTune.Tensors.Quantized.QuantFormat.NF4 })
        {
            using var q = EdgeTune.Tensors.Quantized.QuantizedMatrix.Quantize(w, vocab, channels, format);
            foreach (int chunk in new[] { 5, 16, CrossEntropy.DefaultChunk })
            {
                var lse = new float[rows];
                var g = new float[x.Length];
                var fused = EdgeTune.Tensors.Quantized.QuantLmHead.Forward(x, q, targets, lse, rows, chunk, default, g);
                var lse2 = new float[rows];
                var plain = EdgeTune.Tensors.Quantized.QuantLmHead.Forward(x, q, targets, lse2, rows, chunk);
                Assert.Equal(plain.LossSum, fused.LossSum, 1e-4);
                var dx = new float[x.Length];
                EdgeTune.Tensors.Quantized.QuantLmHead.Backward(x, q, targets, lse2, dx, rows, 1f, chunk);
                for (int i = 0; i < dx.Length; i++) Assert.True(Math.Abs(dx[i] - g[i]) <= 1e-4 + 1e-4 * Math.Abs(dx[i]), $"{format} chunk {chunk}: [{i}] {g[i]} vs {dx[i]}");
            }
        }
    }

    [Fact]
    public void LmHeadReadsHalfAndBf16Weights()
    {
        int rows = 6, channels = 8, vocab = 19;
        float[] x = ToFloat(Gaussian(8, rows * channels));
        float[] w = ToFloat(Gaussian(9, vocab * channels, 0.5));
        var wh = Array.ConvertAll(w, v => (Half)v);
        var wb = new ushort[w.Length];
        BFloat16.FromSingle(w, wb);
        float[] fromHalf = Array.ConvertAll(wh, v => (float)v), fromBf16 = Array.ConvertAll(wb, BFloat16.ToSingle);
        int[] targets = Targets(10, rows, vocab, withIgnored: false);

        var lse = new float[rows];
        var half = CrossEntropy.LmHeadForward<Half>(x, wh, targets, lse, rows, channels, vocab, 5);
        Assert.Equal(CrossEntropy.LmHeadForward<float>(x, fromHalf, targets, new float[rows], rows, channels, vocab, 5).LossSum, half.LossSum, 1e-5);
        var dxH = new float[x.Length]; var dxF = new float[x.Length]; var dwH = new float[w.Length]; var dwF = new float[w.Length];
        CrossEntropy.LmHeadBackward<Half>(x, wh, targets, lse, dxH, dwH, rows, channels, vocab, 0.25f, 4);
        CrossEntropy.LmHeadBackward<float>(x, fromHalf, targets, lse, dxF, dwF, rows, channels, vocab, 0.25f, 4);
        for (int i = 0; i < dxH.Length; i++) Assert.Equal(dxF[i], dxH[i], 1e-6f);
        for (int i = 0; i < dwH.Length; i++) Assert.Equal(dwF[i], dwH[i], 1e-6f);

        var bf = CrossEntropy.LmHeadForward<ushort>(x, wb, targets, lse, rows, channels, vocab, 4);
        Assert.Equal(CrossEntropy.LmHeadForward<float>(x, fromBf16, targets, new float[rows], rows, channels, vocab, 4).LossSum, bf.LossSum, 1e-5);
        Assert.NotEqual(half.LossSum, bf.LossSum); // the two roundings differ, so each path really read its own format
        Array.Clear(dxF); var dxB = new float[x.Length];
        CrossEntropy.LmHeadBackward<ushort>(x, wb, targets, lse, dxB, default, rows, channels, vocab, 0.25f, 4);
        CrossEntropy.LmHeadBackward<float>(x, fromBf16, targets, lse, dxF, default, rows, channels, vocab, 0.25f, 4);
        for (int i = 0; i < dxB.Length; i++) Assert.Equal(dxF[i], dxB[i], 1e-6f);
    }

    [Fact]
    public void LmHeadCoresAgreeAtEveryWidth()
    {
        int rows = 17, channels = 9, vocab = 45, chunk = 13;
        float[] x = ToFloat(Gaussian(13, rows * channels)), w = ToFloat(Gaussian(14, vocab * channels, 0.5));
        int[] targets = Targets(15, rows, vocab, withIgnored: true);
        double[] rLse = new double[rows];
        CrossEntropyReference.LmHeadForward<double>(ToDouble(x), ToDouble(w), targets, rLse, rows, channels, vocab);
        var rdx = new double[x.Length]; var rdw = new double[w.Length];
        CrossEntropyReference.LmHeadBackward<double>(ToDouble(x), ToDouble(w), targets, rLse, rdx, rdw, rows, channels, vocab, 0.1);
        var cores = new List<(string, Action<float[], float[]>, Action<float[], float[], float[]>)>();
        if (V512.IsAccelerated) cores.Add(("V512", (l, o) => CrossEntropy.LmHeadForwardCore<V512, float>(x, w, targets, l, o, rows, channels, vocab, chunk),
            (l, dx, dw) => CrossEntropy.LmHeadBackwardCore<V512, float>(x, w, targets, l, dx, dw, rows, channels, vocab, 0.1f, chunk)));
        if (V256.IsAccelerated) cores.Add(("V256", (l, o) => CrossEntropy.LmHeadForwardCore<V256, float>(x, w, targets, l, o, rows, channels, vocab, chunk),
            (l, dx, dw) => CrossEntropy.LmHeadBackwardCore<V256, float>(x, w, targets, l, dx, dw, rows, channels, vocab, 0.1f, chunk)));
        cores.Add(("V128", (l, o) => CrossEntropy.LmHeadForwardCore<V128, float>(x, w, targets, l, o, rows, channels, vocab, chunk),
            (l, dx, dw) => CrossEntropy.LmHeadBackwardCore<V128, float>(x, w, targets, l, dx, dw, rows, channels, vocab, 0.1f, chunk)));
        foreach (var (name, fwd, bwd) in cores)
        {
            var lse = new float[rows];
            fwd(lse, new float[rows]);
            Close(rLse, lse, 1e-5, 1e-5, name + " lse");
            var dx = new float[x.Length]; var dw = new float[w.Length];
            bwd(lse, dx, dw);
            Close(rdx, dx, 1e-4, 1e-6, name + " dx");
            Close(rdw, dw, 1e-4, 1e-6, name + " dW");
        }
    }

    [Fact]
    public void ReferenceLmHeadGradientsMatchFiniteDifferences()
    {
        int rows = 3, channels = 4, vocab = 5;
        double[] x = Gaussian(11, rows * channels), w = Gaussian(12, vocab * channels);
        int[] targets = [4, 0, CrossEntropy.IgnoreIndex];
        double Loss(double[] xx, double[] ww) =>
            CrossEntropyReference.LmHeadForward<double>(xx, ww, targets, new double[rows], rows, channels, vocab).Sum / 2;
        var lse = new double[rows];
        CrossEntropyReference.LmHeadForward<double>(x, w, targets, lse, rows, channels, vocab);
        var dx = new double[x.Length]; var dw = new double[w.Length];
        CrossEntropyReference.LmHeadBackward<double>(x, w, targets, lse, dx, dw, rows, channels, vocab, 0.5);
        GradCheck.Check("dx", xx => Loss(xx, w), x, dx, h: 1e-5, rtol: 1e-6, atol: 1e-9);
        GradCheck.Check("dW", ww => Loss(x, ww), w, dw, h: 1e-5, rtol: 1e-6, atol: 1e-9);
    }

    [Fact]
    public void BadTargetsAndNonFiniteLogitsAreNamed()
    {
        var e = Assert.Throws<ShapeException>(() => CrossEntropy.Forward(new float[6], [1, 3], new float[2], 2, 3));
        Assert.Contains("row 1", e.Message);
        Assert.Contains("id 3", e.Message);
        Assert.Contains("[0, 3)", e.Message);
        e = Assert.Throws<ShapeException>(() => CrossEntropy.LmHeadForward<float>(new float[4], new float[6], [-1, 0], new float[2], 2, 2, 3));
        Assert.Contains("row 0", e.Message);
        Assert.Contains("id -1", e.Message);
        float[] logits = [0, 1, 2, 3, float.NaN, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        var a = Assert.Throws<ArithmeticException>(() => CrossEntropy.Forward(logits, [0, 1], new float[2], 2, 10));
        Assert.Contains("CrossEntropy.Forward", a.Message);
        Assert.Contains("row 0", a.Message);
        logits[4] = 0; logits[17] = float.PositiveInfinity;
        a = Assert.Throws<ArithmeticException>(() => CrossEntropy.Forward(logits, [0, 1], new float[2], 2, 10));
        Assert.Contains("row 1", a.Message);
        float[] x = [1, float.NaN];
        a = Assert.Throws<ArithmeticException>(() => CrossEntropy.LmHeadForward<float>(x, new float[6], [0], new float[1], 1, 2, 3));
        Assert.Contains("CrossEntropy.LmHeadForward", a.Message);
    }
}
