using System.Diagnostics;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Tiled attention forward/backward and the fused LM-head cross-entropy, against their scalar
/// references on the same inputs. Prints GFLOP/s (causal attention counts 2·T²·D per head per
/// matmul pair, halved for the mask) and ends with one JSON line.
/// </summary>
public static class AttentionSuite
{
    public static int Run(string[] args)
    {
        int b = 2, t = args.Length > 0 ? int.Parse(args[0]) : 512, hq = 8, hkv = 2, d = 64;
        var rng = new Rng(1);
        float[] q = new float[b * t * hq * d], k = new float[b * t * hkv * d], v = new float[k.Length], dO = new float[q.Length];
        rng.FillGaussian(q, 0, 1); rng.FillGaussian(k, 0, 1); rng.FillGaussian(v, 0, 1); rng.FillGaussian(dO, 0, 1);
        float[] o = new float[q.Length], lse = new float[b * hq * t];
        float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
        double fwdFlops = 2.0 * 2 * t * (t + 1) / 2 * d * b * hq; // QKᵀ and PV over the causal half
        double bwdFlops = 2.5 * fwdFlops;                         // five matmuls in backward
        double fwd = Time(() => Attention.Forward(q, k, v, o, lse, b, t, hq, hkv, d));
        double bwd = Time(() => Attention.Backward(q, k, v, o, lse, dO, dq, dk, dv, b, t, hq, hkv, d));
        double refFwd = Time(() => AttentionReference.Forward<float>(q, k, v, o, lse, b, t, hq, hkv, d, 0.125f), 2);
        Console.WriteLine($"attention B={b} T={t} Hq={hq} Hkv={hkv} D={d} threads={WorkerPool.Shared.Threads} simd={Simd.Width}");
        Console.WriteLine($"  forward  {fwd * 1e3,8:F2} ms  {fwdFlops / fwd / 1e9,6:F2} GFLOP/s   reference {refFwd * 1e3,8:F2} ms ({fwdFlops / refFwd / 1e9:F2} GFLOP/s)");
        Console.WriteLine($"  backward {bwd * 1e3,8:F2} ms  {bwdFlops / bwd / 1e9,6:F2} GFLOP/s");

        int n = 128, c = 128, vocab = 8192;
        float[] x = new float[n * c], w = new float[vocab * c], dx = new float[x.Length], dw = new float[w.Length];
        rng.FillGaussian(x, 0, 1); rng.FillGaussian(w, 0, 0.05f);
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) targets[i] = rng.NextInt(vocab);
        float[] rowLse = new float[n];
        double ceFwd = Time(() => CrossEntropy.LmHeadForward<float>(x, w, targets, rowLse, n, c, vocab, 2048), 3);
        double ceBwd = Time(() => CrossEntropy.LmHeadBackward<float>(x, w, targets, rowLse, dx, dw, n, c, vocab, 1f / n, 2048), 3);
        double ceFlops = 2.0 * n * c * vocab;
        Console.WriteLine($"lm-head CE N={n} C={c} V={vocab} chunk=2048 (Gemm bound)");
        Console.WriteLine($"  forward  {ceFwd * 1e3,8:F2} ms  {ceFlops / ceFwd / 1e9,6:F2} GFLOP/s");
        Console.WriteLine($"  backward {ceBwd * 1e3,8:F2} ms  {3 * ceFlops / ceBwd / 1e9,6:F2} GFLOP/s");
        Console.WriteLine($"{{\"suite\":\"attention\",\"t\":{t},\"fwd_ms\":{fwd * 1e3:F3},\"bwd_ms\":{bwd * 1e3:F3},\"ref_fwd_ms\":{refFwd * 1e3:F3},\"ce_fwd_ms\":{ceFwd * 1e3:F3},\"ce_bwd_ms\":{ceBwd * 1e3:F3}}}");
        return 0;
    }

    private static double Time(Action body, int reps = 10)
    {
        // warm up past tiered compilation (at least 20 calls or 2 s)
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 20 && warm.Elapsed.TotalSeconds < 2; i++) body();
        double best = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }
}
