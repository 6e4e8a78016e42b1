using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text.Json;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench;

/// <summary>
/// Throughput of the pointwise kernels (single thread) at the process SIMD width, next to the scalar
/// reference and, where one exists, System.Numerics.Tensors.TensorPrimitives from the same run.
/// Prints one line per kernel and, last, a JSON object of all figures (ns per element).
/// </summary>
public static class PointwiseSuite
{
    public static int Run()
    {
        var rng = new Rng(1);
        var results = new Dictionary<string, double>();
        const int n = 1 << 20;
        float[] a = new float[n], b = new float[n], y = new float[n], g = new float[n];
        rng.FillUniform(a, -3, 3);
        rng.FillUniform(b, -3, 3);

        Report(results, "add", n, () => Elementwise.Add(a, b, y), () => ElementwiseReference.Add<float>(a, b, y), () => TensorPrimitives.Add(a, b, y));
        Report(results, "silu", n, () => Elementwise.SiLU(a, y), () => ElementwiseReference.SiLU<float>(a, y), null);
        Report(results, "gelu_tanh", n, () => Elementwise.Gelu(a, y, GeluApproximation.Tanh), () => ElementwiseReference.Gelu<float>(a, y, GeluApproximation.Tanh), null);
        Report(results, "gelu_erf", n, () => Elementwise.Gelu(a, y, GeluApproximation.Exact), () => ElementwiseReference.Gelu<float>(a, y, GeluApproximation.Exact), null);
        Report(results, "swiglu_backward", n, () => Elementwise.SwiGluBackward(a, b, a, y, g), () => ElementwiseReference.SwiGluBackward<float>(a, b, a, y, g), null);
        Report(results, "sum_of_squares", n, () => Reductions.SumOfSquares(a), () => ReductionsReference.SumOfSquares<float>(a), () => TensorPrimitives.SumOfSquares<float>(a));

        const int rows = 32, vocab = 32768;
        Report(results, "softmax_32x32768", rows * vocab, () => Softmax.Forward(a, y, rows, vocab), () => SoftmaxReference.Forward<float>(a, y, rows, vocab),
            () => { for (int r = 0; r < rows; r++) TensorPrimitives.SoftMax(a.AsSpan(r * vocab, vocab), y.AsSpan(r * vocab, vocab)); });

        const int tokens = 512, c = 2048;
        float[] w = new float[c], dw = new float[c], rstd = new float[tokens];
        rng.FillUniform(w, 0.5f, 1.5f);
        Report(results, "rmsnorm_fwd_512x2048", tokens * c, () => RmsNorm.Forward(a, w, y, rstd, tokens, c, 1e-5f),
            () => RmsNormReference.Forward<float>(a, w, y, rstd, tokens, c, 1e-5f), null);
        Report(results, "rmsnorm_bwd_512x2048", tokens * c, () => RmsNorm.Backward(a, w, rstd, b, g, dw, tokens, c),
            () => RmsNormReference.Backward<float>(a, w, rstd, b, g, dw, tokens, c), null);

        const int t = 256, h = 32, d = 128;
        var table = new RopeTable(t, d, 500000);
        double[] invFreq = RopeTable.InverseFrequencies(d, 500000);
        float[] invF = invFreq.Select(f => (float)f).ToArray();
        int[] pos = Enumerable.Range(0, t).ToArray();
        foreach (RopeStyle style in new[] { RopeStyle.Interleaved, RopeStyle.HalfSplit })
            Report(results, $"rope_{style}_256x32x128", t * h * d, () => Rope.Forward(a.AsSpan(0, t * h * d), t, h, d, 0, table, style),
                () => RopeReference.Forward<float>(a.AsSpan(0, t * h * d), t, h, d, pos, invF, style), null);

        Console.WriteLine(JsonSerializer.Serialize(new { suite = "pointwise", simd = Simd.Width.ToString(), ns_per_element = results }));
        return 0;
    }

    private static void Report(Dictionary<string, double> results, string name, int elements, Action fast, Action reference, Action? primitives)
    {
        double f = Time(fast, elements), r = Time(reference, elements);
        results[name] = f;
        results[name + "_reference"] = r;
        string line = $"{name,-28} fast {f,8:F3} ns/elem   reference {r,8:F3} ns/elem ({r / f,5:F1}x)";
        if (primitives is not null)
        {
            double p = Time(primitives, elements);
            results[name + "_tensorprimitives"] = p;
            line += $"   TensorPrimitives {p,8:F3} ns/elem";
        }
        Console.WriteLine(line);
    }

    /// <summary>Best of several timed batches, after warm-up, in ns per element of this thread's CPU
    /// time (getrusage on Linux, so other processes on a loaded machine do not count; wall time elsewhere).</summary>
    private static double Time(Action action, int elements)
    {
        for (int i = 0; i < 5; i++) action();
        double best = double.MaxValue;
        for (int trial = 0; trial < 3; trial++)
        {
            double start = Now(), now;
            int reps = 0;
            do { action(); reps++; now = Now(); } while (now - start < 100e6);
            best = Math.Min(best, (now - start) / reps / elements);
        }
        return best;
    }

    private static readonly Stopwatch Wall = Stopwatch.StartNew();

    /// <summary>Nanoseconds of this thread's user+system CPU time (Linux), else wall time.</summary>
    private static double Now()
    {
        if (OperatingSystem.IsLinux() && getrusage(1 /* RUSAGE_THREAD */, out RUsage u) == 0)
            return (u.UserSec + u.SysSec) * 1e9 + (u.UserUsec + u.SysUsec) * 1e3;
        return Wall.Elapsed.TotalNanoseconds;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSec, UserUsec, SysSec, SysUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);
}
