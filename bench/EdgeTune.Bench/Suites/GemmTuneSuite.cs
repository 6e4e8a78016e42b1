using EdgeTune.Bench.Common;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// A tuning probe for the GEMM: one shape in every layout, each kernel shape (rows 12, 14, 6) and
/// width, next to OpenBLAS timed alternately. Shape from EDGETUNE_TUNE_SHAPE="M,K,N" (default
/// 2048,2048,2048); blocking from EDGETUNE_GEMM_BLOCK="KC,MC,NC".
/// </summary>
public sealed class GemmTuneSuite : IBenchSuite
{
    public string Name => "gemm-tune";
    public string Description => "GEMM tuning probe: kernel shapes and widths on one shape (EDGETUNE_TUNE_SHAPE)";

    public int Run(BenchOptions options)
    {
        int[] s = (Environment.GetEnvironmentVariable("EDGETUNE_TUNE_SHAPE") ?? "2048,2048,2048").Split(',').Select(int.Parse).ToArray();
        int m = s[0], k = s[1], n = s[2], th = options.Threads ?? 1;
        double budget = options.Quick ? 0.5 : 1.5;
        var blas = Environment.GetEnvironmentVariable("EDGETUNE_TUNE_NOBLAS") is null ? OpenBlas.TryLoad() : null;
        blas?.SetThreads(th);
        WorkerPool.Configure(th);
        var rng = new Rng(1);
        float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
        rng.FillUniform(a, -1, 1);
        rng.FillUniform(b, -1, 1);
        double flops = 2.0 * m * k * n;
        var layouts = new[] { (GemmLayout.ABt, "A*B^T"), (GemmLayout.AB, "A*B"), (GemmLayout.AtB, "A^T*B") };
        foreach (var (layout, name) in layouts)
            foreach (var (w, rows) in (Environment.GetEnvironmentVariable("EDGETUNE_TUNE_ALL") is null ? new[] { (SimdWidth.V512, 0) } : new[] { (SimdWidth.V512, 0), (SimdWidth.V512, 12), (SimdWidth.V512, 14), (SimdWidth.V256, 12), (SimdWidth.V256, 6) }))
            {
                if ((int)w > (int)Simd.Width) continue;
                var (r1, r2) = Timing.BestPair(() => Gemm.Compute<float>(layout, a, b, c, m, k, n, false, w, th, rows),
                    blas is null ? null : () => blas.Sgemm(name, a, b, c, m, k, n), 1, 3, 100, budget, th == 1 ? 0 : 150);
                // One thread: CPU time (robust on a shared machine); more: wall time.
                double t1 = th == 1 ? r1.Cpu : r1.Wall;
                double? t2 = r2 is { } q ? (th == 1 ? q.Cpu : q.Wall) : null;
                string theirs = t2 is { } x ? $"{flops / x / 1e9,7:F1}" : "      -";
                Console.WriteLine($"{name,-6} {m}x{k}x{n} thr={th} {w} rows={rows,2}: ours {flops / t1 / 1e9,7:F1}  OpenBLAS {theirs}  ratio {(t2 is { } y ? y / t1 : double.NaN):F2}");
            }
        Console.WriteLine("{\"suite\":\"gemm-tune\"}");
        return 0;
    }
}
