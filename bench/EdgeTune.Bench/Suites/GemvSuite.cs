using EdgeTune.Bench.Common;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors.Quantized.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Decode matrix-vector kernels, new against old on the same weights in the same run (timed alternately): the
/// <see cref="Gemv"/> path for F32/BF16 weights against the small-M GEMM it replaced in decode. SmolLM2-135M shapes: MLP up/gate [1536, 576], down [576, 1536],
/// the tied LM head [49152, 576]. Prints µs per call and GB/s of weight streamed. Q8_0/Q4_0 rows: the AVX-512 decode dot
/// ("new") against the AVX2 one ("old"), where the machine has AVX-512 BW. Usage: <c>gemv [threads]</c>.
/// </summary>
public static class GemvSuite
{
    private static readonly (int N, int K)[] s_shapes = [(128, 576), (1536, 576), (576, 1536), (49152, 576)];

    public static int Run(string[] args)
    {
        int[] threadCounts = args.Length > 0 && int.TryParse(args[0], out int t) ? [t] : [1, 2];
        Console.WriteLine("µs per call: the calling thread's CPU time at 1 thread, wall time otherwise");
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
                if (!QuantIntDot.Avx512Supported) continue;
                foreach (var f in new[] { QuantFormat.Q8_0, QuantFormat.Q4_0 })
                {
                    using var q = QuantizedMatrix.Quantize(w, n, k, f);
                    int threadsNow = th;
                    Row(f == QuantFormat.Q8_0 ? "q8_0" : "q4_0", n, k, th, q.ByteLength,
                        () => QuantGemv.Run(x, q, y, 1, false, Simd.Width, threadsNow, IntDotPath.Avx512),
                        () => QuantGemv.Run(x, q, y, 1, false, Simd.Width, threadsNow, IntDotPath.Avx2));
                }
            }
        }
        WorkerPool.Configure(WorkerPool.DefaultThreads());
        return 0;
    }

    private static void Row(string kind, int n, int k, int threads, long bytes, Action now, Action before)
    {
        var (a, b) = Timing.BestPair(now, before, warmup: 3, minReps: 6, maxReps: 2000, budgetSeconds: 0.4 * threads);
        // One thread: the calling thread's CPU seconds (robust to other processes on the machine); more: wall.
        double ta = threads == 1 ? a.Cpu : a.Wall, tb = threads == 1 ? b!.Value.Cpu : b!.Value.Wall;
        double ga = bytes / ta / 1e9, gb = bytes / tb / 1e9;
        Console.WriteLine($"{kind,-6} {n,6} {k,5} {threads,3} {ta * 1e6,9:F1} {ga,6:F1} {tb * 1e6,9:F1} {gb,6:F1} {tb / ta,7:F2}");
    }
}
