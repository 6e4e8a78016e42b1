using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// FP32 GEMM throughput in the three layouts at 1 and 2 threads, next to the machine's measured FMA
/// peak and OpenBLAS <c>cblas_sgemm</c> on the same shapes in the same run; plus F16/BF16-B rows and
/// a vector-width comparison.
/// </summary>
public sealed class GemmSuite : IBenchSuite
{
    private static readonly (int M, int K, int N)[] s_shapes = [(512, 576, 1536), (512, 1536, 576), (512, 576, 49152), (2048, 2048, 2048)];
    private static readonly string[] s_layouts = ["A*B^T", "A*B", "A^T*B"];

    public string Name => "gemm";

    private static (int M, int K, int N) ParseShape(string s)
    {
        var p = s.Split('x');
        if (p.Length != 3) throw new ArgumentException($"EDGETUNE_BENCH_GEMM_SHAPES: '{s}' is not MxKxN");
        return (int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture));
    }
    public string Description => "fp32 GEMM GFLOP/s vs FMA peak and OpenBLAS (3 layouts, 1-2 threads)";

    public int Run(BenchOptions options)
    {
        int[] threadCounts = options.Threads is { } t ? [t] : [1, 2];
        double budget = options.Quick ? 0.25 : 1.0;
        var blas = OpenBlas.TryLoad();
        Console.WriteLine($"gemm suite: SIMD {Simd.Width}, {Environment.ProcessorCount} processors, " +
            $"OpenBLAS {(blas is null ? "absent" : blas.Describe())}, OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)"}");

        var peak = new JsonObject();
        foreach (int th in threadCounts)
        {
            double p = FmaPeak.Measure(th, budget);
            peak[th.ToString()] = Json.Number(p);
            Console.WriteLine($"FMA peak, {th} thread(s): {p,7:F1} GFLOP/s");
        }

        var results = new JsonArray();
        Console.WriteLine($"{"layout",-6} {"M",5} {"K",5} {"N",6} {"thr",3} {"ours",8} {"OpenBLAS",8} {"ratio",6}");
        // EDGETUNE_BENCH_GEMM_SHAPES="MxKxN,..." replaces the default shapes (e.g. the skinny rank-r products of LoRA).
        var shapes = Environment.GetEnvironmentVariable("EDGETUNE_BENCH_GEMM_SHAPES") is { Length: > 0 } env
            ? env.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseShape).ToArray()
            : s_shapes;
        foreach (var (m, k, n) in shapes)
        {
            var rng = new Rng(42);
            float[] a = new float[m * k], b = new float[(long)k * n > int.MaxValue ? 0 : k * n], c = new float[m * n];
            rng.FillUniform(a, -1, 1);
            rng.FillUniform(b, -1, 1);
            foreach (int th in threadCounts)
            {
                WorkerPool.Configure(th);
                blas?.SetThreads(th);
                foreach (string layout in s_layouts)
                {
                    // Two threads get a longer budget: the best rep must catch both cores free.
                    var (t1, t2) = Timing.BestPair(() => Ours(layout, a, b, c, m, k, n),
                        blas is null ? null : () => blas.Sgemm(layout, a, b, c, m, k, n),
                        warmup: 2.0 * m * k * n > 5e9 ? 1 : 3, minReps: 3, maxReps: 400, budgetSeconds: (th == 1 ? 1.5 : 3) * budget, settleMs: th == 1 ? 0 : 150);
                    double ours = Gflops(m, k, n, t1.Wall);
                    double? theirs = t2 is { } s2 ? Gflops(m, k, n, s2.Wall) : null;
                    var row = Row(layout, "f32", m, k, n, th, ours, theirs);
                    if (th == 1)
                    {
                        // Single-threaded runs also by CPU time, which other processes on the cores do not inflate.
                        double oc = Gflops(m, k, n, t1.Cpu);
                        double? tc = t2 is { } s3 ? Gflops(m, k, n, s3.Cpu) : null;
                        row["cpu_gflops"] = Json.Number(oc);
                        row["openblas_cpu_gflops"] = Json.Number(tc);
                        Print(layout, "f32", m, k, n, th, ours, theirs, $"(CPU time: {oc:F1} vs {tc:F1}, {(tc is { } x ? oc / x : double.NaN):F2})");
                    }
                    else Print(layout, "f32", m, k, n, th, ours, theirs, "");
                    results.Add(row);
                }
            }
        }

        // Decode-like products (M = 1 and 8: the unpacked small-M path), at the largest thread count.
        foreach (int m in new[] { 1, 8 })
        {
            int k = 2048, n = 2048, th = threadCounts[^1];
            WorkerPool.Configure(th);
            blas?.SetThreads(th);
            var rng = new Rng(3);
            float[] a = new float[m * k], b = new float[k * n], c = new float[m * n];
            rng.FillUniform(a, -1, 1);
            rng.FillUniform(b, -1, 1);
            foreach (string layout in new[] { "A*B^T", "A*B" })
            {
                var (t1, t2) = Timing.BestPair(() => Ours(layout, a, b, c, m, k, n),
                    blas is null ? null : () => blas.Sgemm(layout, a, b, c, m, k, n), 3, 3, 400, budget, th == 1 ? 0 : 150);
                double ours = Gflops(m, k, n, t1.Wall);
                double? theirs = t2 is { } s2 ? Gflops(m, k, n, s2.Wall) : null;
                Print(layout, "f32", m, k, n, th, ours, theirs, "  (decode)");
                results.Add(Row(layout, "f32", m, k, n, th, ours, theirs));
            }
        }

        // Half-precision B (widened inside packing) and the 256- vs 512-bit kernels.
        {
            int m = 512, k = 576, n = 1536, th = threadCounts[^1];
            WorkerPool.Configure(th);
            var rng = new Rng(7);
            float[] a = new float[m * k], bf = new float[k * n], c = new float[m * n];
            rng.FillUniform(a, -1, 1);
            rng.FillUniform(bf, -1, 1);
            Half[] bh = bf.Select(v => (Half)v).ToArray();
            ushort[] bb = bf.Select(BFloat16.FromSingle).ToArray();
            double f16 = Gflops(m, k, n, Time(() => Gemm.ABt<Half>(a, bh, c, m, k, n), m, k, n, budget));
            double bf16 = Gflops(m, k, n, Time(() => Gemm.ABt<ushort>(a, bb, c, m, k, n), m, k, n, budget));
            Print("A*B^T", "f16", m, k, n, th, f16, null, "");
            Print("A*B^T", "bf16", m, k, n, th, bf16, null, "");
            results.Add(Row("A*B^T", "f16", m, k, n, th, f16, null));
            results.Add(Row("A*B^T", "bf16", m, k, n, th, bf16, null));
            foreach (var w in new[] { SimdWidth.V512, SimdWidth.V256 })
            {
                if ((int)w > (int)Simd.Width) continue;
                double g = Gflops(m, k, n, Time(() => Gemm.Compute<float>(GemmLayout.ABt, a, bf, c, m, k, n, false, w, th, 0), m, k, n, budget));
                Console.WriteLine($"width {w}: A*B^T {m}x{k}x{n}, {th} thread(s): {g,7:F1} GFLOP/s");
                var row = Row("A*B^T", "f32", m, k, n, th, g, null);
                row["simd"] = w.ToString();
                results.Add(row);
            }
        }

        Json.WriteLast(new JsonObject { ["suite"] = "gemm", ["simd"] = Simd.Width.ToString(), ["peak_gflops"] = peak, ["results"] = results });
        return 0;
    }

    private static void Ours(string layout, float[] a, float[] b, float[] c, int m, int k, int n)
    {
        switch (layout)
        {
            case "A*B^T": Gemm.ABt<float>(a, b, c, m, k, n); break;
            case "A*B": Gemm.AB<float>(a, b, c, m, k, n); break;
            default: Gemm.AtB<float>(a, b, c, m, k, n); break;
        }
    }

    private static double Time(Action body, int m, int k, int n, double budget)
    {
        double flops = 2.0 * m * k * n;
        int warmup = flops > 5e9 ? 1 : 3;
        return Timing.BestTime(body, warmup, minReps: 3, maxReps: 200, budgetSeconds: budget);
    }

    private static double Gflops(int m, int k, int n, double seconds) => 2.0 * m * k * n / seconds / 1e9;

    private static void Print(string layout, string dtype, int m, int k, int n, int th, double ours, double? theirs, string note)
    {
        string blas = theirs is { } t ? $"{t,8:F1}" : "       -";
        string ratio = theirs is { } t2 ? $"{ours / t2,6:F2}" : "     -";
        Console.WriteLine($"{layout,-6} {m,5} {k,5} {n,6} {th,3} {ours,8:F1} {blas} {ratio}  {(dtype == "f32" ? "" : "B " + dtype)}{note}");
    }

    private static JsonObject Row(string layout, string dtype, int m, int k, int n, int th, double ours, double? theirs) => new()
    {
        ["layout"] = layout, ["b_dtype"] = dtype, ["m"] = m, ["k"] = k, ["n"] = n, ["threads"] = th,
        ["gflops"] = Json.Number(ours), ["openblas_gflops"] = Json.Number(theirs),
        ["ratio"] = theirs is { } t ? Json.Number(ours / t, 3) : null,
    };
}
