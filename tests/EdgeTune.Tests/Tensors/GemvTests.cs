using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tests.Tensors;

public class GemvTests
{
    private static readonly SimdWidth[] s_widths =
        new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128, SimdWidth.Scalar }.Where(w => (int)w <= (int)Simd.Width).ToArray();

    /// <summary>x, W in every stored dtype, y0 and the double reference of x·Wᵀ over the widened W.</summary>
    private static (float[] X, float[] Wide, Array[] Stored, float[] Y0) Make(int m, int k, int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[m * k];
        var w = new float[n * k];
        var y0 = new float[m * n];
        rng.FillUniform(x, -1, 1);
        rng.FillUniform(w, -1, 1);
        rng.FillUniform(y0, -1, 1);
        var bf = w.Select(BFloat16.FromSingle).ToArray();
        var h = w.Select(v => (Half)v).ToArray();
        return (x, w, [w, h, bf], y0);
    }

    private static float[] Run(Array stored, float[] x, float[] y0, int m, int k, int n, bool accumulate, SimdWidth width, WorkerPool pool)
    {
        var y = (float[])y0.Clone();
        switch (stored)
        {
            case float[] f: Gemv.Compute<float>(x, f, y, m, k, n, accumulate, width, pool); break;
            case Half[] h: Gemv.Compute<Half>(x, h, y, m, k, n, accumulate, width, pool); break;
            case ushort[] u: Gemv.Compute<ushort>(x, u, y, m, k, n, accumulate, width, pool); break;
        }
        return y;
    }

    private static double Widened(Array stored, int i) => stored switch
    {
        float[] f => f[i],
        Half[] h => (double)(float)h[i],
        ushort[] u => BFloat16.ToSingle(u[i]),
        _ => throw new ArgumentException("dtype"),
    };

    [Fact]
    public void MatchesTheDoubleReferenceForEveryDtypeWidthAndOddShape()
    {
        using var pool3 = new WorkerPool(3);
        using var pool1 = new WorkerPool(1);
        ulong seed = 1;
        foreach (int m in new[] { 1, 2, 3, 4 })
            foreach (int k in new[] { 1, 7, 33, 64, 97, 301 })
                foreach (int n in new[] { 1, 5, 13, 70 })
                {
                    var (x, _, stored, y0) = Make(m, k, n, seed++);
                    foreach (var w in stored)
                        foreach (bool acc in new[] { false, true })
                        {
                            // reference: double sums over the widened weight
                            var want = new double[m * n];
                            var bound = new double[m * n];
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++)
                                {
                                    double s = acc ? y0[i * n + j] : 0, b = acc ? Math.Abs(y0[i * n + j]) : 0;
                                    for (int p = 0; p < k; p++)
                                    {
                                        double t = x[i * k + p] * Widened(w, j * k + p);
                                        s += t; b += Math.Abs(t);
                                    }
                                    want[i * n + j] = s; bound[i * n + j] = b;
                                }
                            foreach (var width in s_widths)
                            {
                                var one = Run(w, x, y0, m, k, n, acc, width, pool1);
                                var three = Run(w, x, y0, m, k, n, acc, width, pool3);
                                for (int i = 0; i < one.Length; i++)
                                {
                                    Assert.True(Math.Abs(one[i] - want[i]) <= 1e-6 * (bound[i] + 1) * Math.Sqrt(k + 1),
                                        $"{w.GetType().Name} {width} M={m} K={k} N={n} acc={acc}: [{i}] {one[i]} vs {want[i]}");
                                    Assert.Equal(one[i], three[i]); // the thread count never changes a result
                                }
                            }
                        }
                }
    }

    [Fact]
    public void SplitsLargeWeightsAcrossThreadsWithTheSameResult()
    {
        // 300 x 257 F32 is 300 KB: above the parallel threshold, so the 3-thread pool really splits the rows.
        const int m = 2, k = 257, n = 300;
        var (x, _, stored, y0) = Make(m, k, n, 99);
        using var pool1 = new WorkerPool(1);
        using var pool3 = new WorkerPool(3);
        Assert.True((long)n * k * sizeof(float) >= Gemv.ParallelBytes);
        foreach (var w in stored)
            foreach (var width in s_widths)
                Assert.Equal(Run(w, x, y0, m, k, n, false, width, pool1), Run(w, x, y0, m, k, n, false, width, pool3));
    }

    [Fact]
    public void SplitEvenOddPutsEachBlocksEvenElementsFirst()
    {
        var x = Enumerable.Range(0, 11).Select(i => (float)i).ToArray();
        var d = new float[11];
        Gemv.SplitEvenOdd(x, d, 4);
        Assert.Equal(new float[] { 0, 2, 1, 3, 4, 6, 5, 7, 8, 9, 10 }, d);
    }

    [Fact]
    public void ASteadyStateCallAllocatesNothing()
    {
        const int m = 1, k = 576, n = 1536;
        var (x, _, stored, y0) = Make(m, k, n, 5);
        var y = new float[m * n];
        var report = new List<string>();
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(threads);
            Action<int> nop = _ => { };
            pool.Run(4, nop);
            long b0 = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < 4; r++) pool.Run(4, nop);
            long poolBytes = GC.GetAllocatedBytesForCurrentThread() - b0;
            if (poolBytes != 0) report.Add($"pool({threads}).Run: {poolBytes} B");
            foreach (var w in stored)
            {
                Run(w, x, y0, m, k, n, false, Simd.Width, pool); // warm-up: buffers grow once
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int r = 0; r < 4; r++)
                    switch (w)
                    {
                        case float[] f: Gemv.Compute<float>(x, f, y, m, k, n, false, Simd.Width, pool); break;
                        case Half[] h: Gemv.Compute<Half>(x, h, y, m, k, n, false, Simd.Width, pool); break;
                        case ushort[] u: Gemv.Compute<ushort>(x, u, y, m, k, n, false, Simd.Width, pool); break;
                    }
                long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
                if (bytes != 0) report.Add($"{w.GetType().Name} on {threads} threads: {bytes} B");
            }
        }
        Assert.True(report.Count == 0, string.Join("; ", report));
    }

    [Fact]
    public void RefusesMoreRowsThanTheDecodePathTakes()
    {
        var x = new float[5 * 3];
        var w = new float[2 * 3];
        var y = new float[5 * 2];
        Assert.Throws<ShapeException>(() => Gemv.ABt<float>(x, w, y, 5, 3, 2));
    }
}
