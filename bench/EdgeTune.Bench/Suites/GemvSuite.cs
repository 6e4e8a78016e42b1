using EdgeTune.Bench.Common;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Decode matrix-vector kernels, new against old on the same weights in the same run (timed alternately): the
/// <see cref="Gemv"/> path for F32/BF16 weights against the small-M GEMM it replaced in decode. SmolLM2-135M shapes: MLP up/gate [1536, 576], down [576, 1536],
/// the tied LM head [49152, 576]. Prints µs per call and GB/s of weight streamed. Usage: <c>gemv [threads]</c>.
/// </summary>
public static class GemvSuite
{
    private static readonly (int N, int K)[] s_shapes = [(1536, 576), (576, 1536), (49152, 576)];

    public static int Run(string[] args)
    {
        int[] threadCounts = args.Length > 0 && int.TryParse(args[0], out int t) ? [t] : [1, 2];
        Console.WriteLine($"{"kind",-6} {"N",6} {"K",5} {"thr",3} {"new µs",9} {"GB/s",6} {"old µs",9} {"GB/s",6} {"speedup",7}");
        foreach (var (n, k) in s_shapes)
        {
            var w = new float[n * k];
            new Rng(3).FillGaussian(w, 0, 0.05f);
            var bf = w.Select(BFloat16.FromSingle).ToArray();
            var x = new float[k];
            new Rng(4).FillGaussian(x, 0, 1);
            var y = new float[n];
            foreach (int th in threadCounts)
            {
                WorkerPool.Configure(th);
                Row("f32", n, k, th, 4L * n * k, () => Gemv.ABt<float>(x, w, y, 1, k, n), () => Gemm.ABt<float>(x, w, y, 1, k, n));
                Row("bf16", n, k, th, 2L * n * k, () => Gemv.ABt<ushort>(x, bf, y, 1, k, n), () => Gemm.ABt<ushort>(x, bf, y, 1, k, n));
            }
        }
        WorkerPool.Configure(WorkerPool.DefaultThreads());
        return 0;
    }

    private static void Row(string kind, int n, int k, int threads, long bytes, Action now, Action before)
    {
        var (a, b) = Timing.BestPair(now, before, warmup: 3, minReps: 6, maxReps: 2000, budgetSeconds: 0.4 * threads);
        double ga = bytes / a.Wall / 1e9, gb = bytes / b!.Value.Wall / 1e9;
        Console.WriteLine($"{kind,-6} {n,6} {k,5} {threads,3} {a.Wall * 1e6,9:F1} {ga,6:F1} {b.Value.Wall * 1e6,9:F1} {gb,6:F1} {b.Value.Wall / a.Wall,7:F2}");
    }
}
