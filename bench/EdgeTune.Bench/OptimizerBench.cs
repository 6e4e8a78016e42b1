using System.Diagnostics;
using System.Text.Json;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using EdgeTune.Training;

namespace EdgeTune.Bench;

/// <summary>
/// Optimizer step throughput: the scalar reference, the vectorized kernel on one thread, and the
/// vectorized kernel on the shared pool, over one F32 parameter of <c>n</c> elements. Prints one
/// line per variant, then a JSON summary as the last line.
/// </summary>
public static class OptimizerBench
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 && int.TryParse(args[0], out int v) ? v : 1 << 22;
        const int steps = 20;
        var rng = new Rng(1);
        using var p = new Parameter("w", Tensor.Zeros(DType.F32, [n], "w"));
        rng.FillUniform(p.Value.Span<float>(), -1, 1);
        rng.FillUniform(p.Grad!.Span<float>(), -1, 1);
        var results = new Dictionary<string, double>();

        // scalar reference (the definition), same math as AdamW
        using (var m = Tensor.Zeros(DType.F32, [n], "m"))
        using (var vv = Tensor.Zeros(DType.F32, [n], "v"))
        {
            var s = new AdamWScalars<float>(0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1.2f, 1e-8f);
            results["adamw_reference_ns_per_elem"] = Time(steps, n, () =>
                OptimizerReference.AdamW(p.Value.Span<float>(), p.Grad!.ReadOnlySpan<float>(), m.Span<float>(), vv.Span<float>(), s));
        }
        using (var one = new WorkerPool(1))
        using (var opt = new AdamW([p], new AdamWOptions { LearningRate = 1e-3 }) { Pool = one })
            results["adamw_vector_1thread_ns_per_elem"] = Time(steps, n, opt.Step);
        using (var opt = new AdamW([p], new AdamWOptions { LearningRate = 1e-3 }))
            results["adamw_vector_pool_ns_per_elem"] = Time(steps, n, opt.Step);
        using (var one = new WorkerPool(1))
        using (var opt = new Sgd([p], new SgdOptions { LearningRate = 1e-3, Momentum = 0.9 }) { Pool = one })
            results["sgd_momentum_vector_1thread_ns_per_elem"] = Time(steps, n, opt.Step);
        results["clip_global_norm_ns_per_elem"] = Time(steps, n, () => GradClip.GlobalNorm([p]));

        Console.WriteLine($"optimizer step over {n} F32 elements, {steps} steps, SIMD {Simd.Width}, pool {WorkerPool.Shared.Threads} threads");
        foreach (var (k, t) in results) Console.WriteLine($"  {k,-42} {t,8:F3} ns/element");
        Console.WriteLine(JsonSerializer.Serialize(new { suite = "optimizer", elements = n, simd = Simd.Width.ToString(), threads = WorkerPool.Shared.Threads, results }));
        return 0;
    }

    private static double Time(int steps, int n, Action step)
    {
        // warm up past tiered JIT (30 calls, then a background recompile) and first touch
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 40 || warm.ElapsedMilliseconds < 300; i++) step();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) step();
        return sw.Elapsed.TotalNanoseconds / steps / n;
    }
}
