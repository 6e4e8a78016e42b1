using System.Diagnostics;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Common;

/// <summary>The machine's FP32 FMA peak, measured: independent register-resident FMA chains at the
/// widest accelerated vector width, on 1..T threads started together.</summary>
public static class FmaPeak
{
    /// <summary>GFLOP/s of <paramref name="threads"/> threads together. Each thread's rate is taken
    /// from its own CPU time, so processes sharing the cores do not pull the figure down (the sum is
    /// what the cores deliver when free); best of a few repetitions.</summary>
    public static double Measure(int threads, double seconds)
    {
        Run(10_000); // JIT warm-up
        double best = 0;
        var total = Stopwatch.StartNew();
        for (int rep = 0; rep < 5; rep++)
        {
            const long iters = 4_000_000;
            var start = new Barrier(threads);
            var ts = new Thread[threads];
            double[] rate = new double[threads];
            for (int t = 0; t < threads; t++)
            {
                int id = t;
                ts[t] = new Thread(() =>
                {
                    start.SignalAndWait();
                    double c0 = CpuTime.Thread();
                    long w0 = Stopwatch.GetTimestamp();
                    double sink = Run(iters);
                    double cpu = CpuTime.Thread() - c0;
                    if (double.IsNaN(cpu)) cpu = Stopwatch.GetElapsedTime(w0).TotalSeconds;
                    rate[id] = iters * 16.0 * 2 * Lanes() / cpu + (sink == 12345 ? 1 : 0);
                });
                ts[t].Start();
            }
            foreach (var t in ts) t.Join();
            best = Math.Max(best, rate.Sum());
            if (total.Elapsed.TotalSeconds > seconds) break;
        }
        return best / 1e9;
    }

    private static int Lanes() => Simd.Width switch
    {
        SimdWidth.V512 => V512.Count, SimdWidth.V256 => V256.Count, SimdWidth.V128 => V128.Count, _ => 1,
    };

    private static double Run(long iters) => Simd.Width switch
    {
        SimdWidth.V512 => Chains<V512>(iters),
        SimdWidth.V256 => Chains<V256>(iters),
        _ => Chains<V128>(iters),
    };

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    // 16 independent FMA chains: enough to cover FMA latency x pipes on current cores.
    private static double Chains<TV>(long iters) where TV : struct, IVec<TV>
    {
        TV m = TV.Broadcast(0.9999999f), d = TV.Broadcast(1e-7f);
        TV a0 = TV.Broadcast(1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        TV a8 = a0, a9 = a0, aa = a0, ab = a0, ac = a0, ad = a0, ae = a0, af = a0;
        for (long i = 0; i < iters; i++)
        {
            a0 = TV.Fma(a0, m, d); a1 = TV.Fma(a1, m, d); a2 = TV.Fma(a2, m, d); a3 = TV.Fma(a3, m, d);
            a4 = TV.Fma(a4, m, d); a5 = TV.Fma(a5, m, d); a6 = TV.Fma(a6, m, d); a7 = TV.Fma(a7, m, d);
            a8 = TV.Fma(a8, m, d); a9 = TV.Fma(a9, m, d); aa = TV.Fma(aa, m, d); ab = TV.Fma(ab, m, d);
            ac = TV.Fma(ac, m, d); ad = TV.Fma(ad, m, d); ae = TV.Fma(ae, m, d); af = TV.Fma(af, m, d);
        }
        TV s = TV.Add(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)), TV.Add(TV.Add(a4, a5), TV.Add(a6, a7)));
        s = TV.Add(s, TV.Add(TV.Add(TV.Add(a8, a9), TV.Add(aa, ab)), TV.Add(TV.Add(ac, ad), TV.Add(ae, af))));
        return TV.Sum(s);
    }
}
