using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Quantized-weight products against fp32 on the same shapes in the same run (timed alternately, so
/// both see the same machine load): the dequantizing GEMM y = x·Wᵀ (Q8_0, Q4_0, NF4; W decoded inside
/// the packing step) against <see cref="Gemm.ABt{TB}"/>, and the decode GEMV (M = 1; integer dot for
/// Q8_0/Q4_0/Int8, fused float for NF4) against the fp32 GEMV, in GFLOP/s and GB/s of weight streamed.
/// </summary>
public sealed class QuantSuite : IBenchSuite
{
    // SmolLM2-135M projections, W [N, K]: attention 576x576, MLP up 1536x576, MLP down 576x1536.
    private static readonly (int N, int K)[] s_gemmShapes = [(576, 576), (1536, 576), (576, 1536)];
    private static readonly int[] s_gemmRows = [256, 1024];
    private static readonly QuantFormat[] s_gemmFormats = [QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.NF4];
    // Decode: the MLP up projection, and a weight well past the last-level cache (memory-bound).
    private static readonly (int N, int K)[] s_gemvShapes = [(1536, 576), (576, 1536), (8192, 2048)];
    private static readonly QuantFormat[] s_gemvFormats = [QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.Int8, QuantFormat.NF4];

    public string Name => "quant";
    public string Description => "quantized GEMM (Q8_0/Q4_0/NF4) and int8 decode GEMV vs fp32 (1-2 threads)";

    public int Run(BenchOptions options)
    {
        int[] threadCounts = options.Threads is { } t ? [t] : [1, 2];
        double budget = options.Quick ? 0.2 : 0.6;
        Console.WriteLine($"quant suite: SIMD {Simd.Width}, {Environment.ProcessorCount} processors");
        var results = new JsonArray();

        Console.WriteLine("GEMM y[M,N] = x[M,K]·W[N,K]^T");
        Console.WriteLine($"{"format",-6} {"M",5} {"N",5} {"K",5} {"thr",3} {"GFLOP/s",8} {"fp32",8} {"ratio",6}");
        foreach (var (n, k) in s_gemmShapes)
        {
            var w = Fill(n * k, 1, 0.05f);
            foreach (int m in s_gemmRows)
            {
                var x = Fill(m * k, 2, 1f);
                var y = new float[m * n];
                foreach (var format in s_gemmFormats)
                {
                    using var q = QuantizedMatrix.Quantize(w, n, k, format, "w");
                    foreach (int th in threadCounts)
                    {
                        WorkerPool.Configure(th);
                        var (tq, tf) = Timing.BestPair(() => QuantGemm.ABt(x, q, y, m), () => Gemm.ABt<float>(x, w, y, m, k, n),
                            warmup: 2, minReps: 3, maxReps: 300, budgetSeconds: budget * th, settleMs: 0);
                        double gq = 2.0 * m * n * k / tq.Wall / 1e9, gf = 2.0 * m * n * k / tf!.Value.Wall / 1e9;
                        Console.WriteLine($"{format,-6} {m,5} {n,5} {k,5} {th,3} {gq,8:F1} {gf,8:F1} {gq / gf,6:F2}");
                        results.Add(new JsonObject
                        {
                            ["kind"] = "gemm", ["format"] = format.Info().Name, ["m"] = m, ["n"] = n, ["k"] = k, ["threads"] = th,
                            ["gflops"] = Json.Number(gq), ["fp32_gflops"] = Json.Number(gf), ["ratio"] = Json.Number(gq / gf, 3),
                        });
                    }
                }
            }
        }

        Console.WriteLine("decode GEMV y[1,N] = x[1,K]·W[N,K]^T (GB/s = weight bytes streamed per second)");
        Console.WriteLine($"{"format",-6} {"N",5} {"K",5} {"thr",3} {"µs",8} {"GB/s",7} {"fp32 µs",8} {"fp32GB/s",8} {"speedup",7}");
        foreach (var (n, k) in s_gemvShapes)
        {
            var w = Fill(n * k, 3, 0.05f);
            var x = Fill(k, 4, 1f);
            var y = new float[n];
            foreach (var format in s_gemvFormats)
            {
                using var q = QuantizedMatrix.Quantize(w, n, k, format, "w");
                foreach (int th in threadCounts)
                {
                    WorkerPool.Configure(th);
                    var (tq, tf) = Timing.BestPair(() => QuantGemm.ABt(x, q, y, 1), () => Gemm.ABt<float>(x, w, y, 1, k, n),
                        warmup: 3, minReps: 6, maxReps: 3000, budgetSeconds: budget * th, settleMs: 0);
                    double bq = q.ByteLength / tq.Wall / 1e9, bf = 4.0 * n * k / tf!.Value.Wall / 1e9;
                    double speedup = tf.Value.Wall / tq.Wall;
                    Console.WriteLine($"{format,-6} {n,5} {k,5} {th,3} {tq.Wall * 1e6,8:F1} {bq,7:F1} {tf.Value.Wall * 1e6,8:F1} {bf,8:F1} {speedup,7:F2}");
                    results.Add(new JsonObject
                    {
                        ["kind"] = "gemv", ["format"] = format.Info().Name, ["m"] = 1, ["n"] = n, ["k"] = k, ["threads"] = th,
                        ["us"] = Json.Number(tq.Wall * 1e6), ["gbps"] = Json.Number(bq), ["gflops"] = Json.Number(2.0 * n * k / tq.Wall / 1e9),
                        ["fp32_us"] = Json.Number(tf.Value.Wall * 1e6), ["fp32_gbps"] = Json.Number(bf), ["speedup"] = Json.Number(speedup, 2),
                        ["integer_dot"] = QuantGemv.UsesIntegerDot(format, k),
                    });
                }
            }
        }
        WorkerPool.Configure(WorkerPool.DefaultThreads());
        Json.WriteLast(new JsonObject { ["suite"] = "quant", ["simd"] = Simd.Width.ToString(), ["results"] = results });
        return 0;
    }

    private static float[] Fill(int count, ulong seed, float std)
    {
        var a = new float[count];
        new Rng(seed).FillGaussian(a, 0, std);
        return a;
    }
}
