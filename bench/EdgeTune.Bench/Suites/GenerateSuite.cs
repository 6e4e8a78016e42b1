using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Text generation speed of a SmolLM2-135M-shaped model with random weights (30 layers, hidden 576, 9/3 heads,
/// FFN 1536, vocab 49152, tied): prefill tokens/s (one batched pass over the prompt) and decode tokens/s (one
/// token per step, greedy), EdgeTune with F32 and BF16 weights at 1 and 2 threads, and llama.cpp (LLamaSharp,
/// CPU backend) on our GGUF export of the same weights in the same run: F32 for F32, F16 for BF16 (llama.cpp's
/// CPU BF16 path is not what users run; labelled "f16" in llamacpp_dtype). Both use an F32 KV cache. Rounds of the
/// two engines alternate; single-thread rows also report tokens per CPU-second of the calling thread
/// (cpu_*_tok_s), which other processes on shared cores do not inflate.
/// Quantized rows (PTQ of the same weights): q8_0 / q4_0 are written as GGUF by the exporter (every 2-D weight in that
/// type), which both engines load (ours keeps the projections and the tied embedding/head quantized, views of the file);
/// nf4 is EdgeTune's quantized safetensors (projections NF4, embedding BF16), no llama.cpp counterpart.
/// EDGETUNE_BENCH_GENERATE_DTYPES (comma-separated labels, default all: f32,bf16,q8_0,q4_0,nf4) picks the rows;
/// weights_mb is the model's parameter bytes as EdgeTune holds them; decode_alloc_bytes_per_token is the managed bytes the
/// calling thread allocates per decoded token (GC.GetAllocatedBytesForCurrentThread over the decode steps).
/// </summary>
public sealed class GenerateSuite : IBenchSuite
{
    public string Name => "generate";
    public string Description => "prefill/decode tokens/s, SmolLM2-135M-shaped, F32/BF16, 1-2 threads, vs llama.cpp";

    public int Run(BenchOptions options)
    {
        int[] threadCounts = options.Threads is { } th ? [th] : [1, 2];
        int promptLen = options.Quick ? 32 : 128, decodeLen = options.Quick ? 16 : 64, reps = options.Quick ? 1 : 3;
        string? llamaError = LlamaCppRunner.Probe();
        var cfg = new HfConfig
        {
            ModelType = "llama", HiddenSize = 576, IntermediateSize = 1536, NumHiddenLayers = 30, NumAttentionHeads = 9,
            NumKeyValueHeads = 3, HeadDim = 64, VocabSize = 49152, RmsNormEps = 1e-5, RopeTheta = 100000,
            MaxPositionEmbeddings = 2048, TieWordEmbeddings = true, BosTokenId = 1, EosTokenIds = [2],
        };
        var rng = new Rng(5);
        int[] prompt = new int[promptLen];
        for (int i = 0; i < promptLen; i++) prompt[i] = rng.NextInt(cfg.VocabSize);
        Console.WriteLine($"generate suite: SmolLM2-135M-shaped random model, prompt {promptLen}, decode {decodeLen}, best of {reps}; " +
                          $"llama.cpp {(llamaError is null ? "loaded" : "absent: " + llamaError)}");
        Console.WriteLine($"{"dtype",-5} {"thr",3} {"prefill tok/s",14} {"decode tok/s",13} {"llama.cpp",10} {"prefill",10} {"decode",10}");

        var results = new JsonArray();
        string dir = Path.Combine(Path.GetTempPath(), $"edgetune-bench-generate-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            using var f32Model = DecoderModel.CreateRandom(cfg, 7);
            string[] wanted = (Environment.GetEnvironmentVariable("EDGETUNE_BENCH_GENERATE_DTYPES") is { Length: > 0 } w ? w : "f32,bf16,q8_0,q4_0,nf4")
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var (dtype, ggufType, label, gguflabel) in new[]
            {
                (DType.F32, DType.F32, "f32", "f32"), (DType.BF16, DType.F16, "bf16", "f16"),
                (DType.Q8_0, DType.Q8_0, "q8_0", "q8_0"), (DType.Q4_0, DType.Q4_0, "q4_0", "q4_0"), (DType.U8, DType.F16, "nf4", "-"),
            })
            {
                if (!wanted.Contains(label)) continue;
                string gguf = Path.Combine(dir, $"smollm2-shaped-{label}.gguf");
                DecoderModel? converted;
                if (dtype is DType.Q8_0 or DType.Q4_0)
                {
                    // PTQ: the exporter's GGUF of the same weights, loaded by both engines.
                    ModelExporter.ExportGguf(f32Model, ByteTokenizer(), gguf, dtype);
                    var reader = CheckpointReader.Open(gguf);
                    converted = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
                }
                else if (dtype == DType.U8) converted = QuantizedViaSafetensors(f32Model, Path.Combine(dir, label));
                // BF16 weights as a user gets them: a BF16 safetensors checkpoint, memory-mapped, norms widened to F32.
                else converted = dtype == DType.F32 ? null : ViaSafetensors(f32Model, Path.Combine(dir, label), dtype);
                using var _ = converted;
                var model = converted ?? f32Model;
                bool runLlama = llamaError is null && dtype != DType.U8;
                if (runLlama && dtype is not (DType.Q8_0 or DType.Q4_0)) ModelExporter.ExportGguf(model, ByteTokenizer(), gguf, ggufType);
                double weightsMb = EdgeTune.Compression.Quantization.ModelQuantizer.SizeInBytes(model) / 1e6;
                Console.WriteLine($"{label}: weights {weightsMb:F1} MB as held" + (File.Exists(gguf) ? $", GGUF {new FileInfo(gguf).Length / 1e6:F1} MB" : ""));
                foreach (int threads in threadCounts)
                {
                    WorkerPool.Configure(threads);
                    using var llama = runLlama ? new LlamaCppRunner(gguf, prompt.Length + decodeLen, threads) : null;
                    // Rounds alternate between the two engines so that both see the same machine load; the first warms up.
                    Best ours = Best.None, theirs = Best.None;
                    for (int r = 0; r <= reps; r++)
                    {
                        var o = OursRound(model, prompt, decodeLen);
                        var t = llama?.Round(prompt, decodeLen);
                        if (r == 0) continue;
                        ours = ours.With(o);
                        if (t is { } tt) theirs = theirs.With(tt);
                    }
                    bool cpu = threads == 1; // thread CPU time is meaningful on one thread only (llama.cpp computes on the caller then)
                    Console.WriteLine($"{label,-5} {threads,3} {ours.Prefill(promptLen),14:F1} {ours.Decode(decodeLen),13:F1} {gguflabel,10} " +
                                      $"{Fmt(llama is null ? null : theirs.Prefill(promptLen)),10} {Fmt(llama is null ? null : theirs.Decode(decodeLen)),10}" +
                                      $"   alloc {ours.DecodeAllocBytes / (double)decodeLen:F0} B/token" +
                                      (cpu ? $", by CPU time: ours {ours.PrefillCpu(promptLen):F1}/{ours.DecodeCpu(decodeLen):F1}, llama.cpp {Fmt(llama is null ? null : theirs.PrefillCpu(promptLen))}/{Fmt(llama is null ? null : theirs.DecodeCpu(decodeLen))}" : ""));
                    var row = new JsonObject
                    {
                        ["dtype"] = label, ["threads"] = threads, ["weights_mb"] = Json.Number(weightsMb),
                        ["prefill_tok_s"] = Json.Number(ours.Prefill(promptLen)), ["decode_tok_s"] = Json.Number(ours.Decode(decodeLen)),
                        ["llamacpp_dtype"] = gguflabel,
                        ["llamacpp_prefill_tok_s"] = Json.Number(llama is null ? null : theirs.Prefill(promptLen)),
                        ["llamacpp_decode_tok_s"] = Json.Number(llama is null ? null : theirs.Decode(decodeLen)),
                        ["decode_alloc_bytes_per_token"] = Json.Number(ours.DecodeAllocBytes / (double)decodeLen),
                    };
                    if (cpu)
                    {
                        row["cpu_prefill_tok_s"] = Json.Number(ours.PrefillCpu(promptLen));
                        row["cpu_decode_tok_s"] = Json.Number(ours.DecodeCpu(decodeLen));
                        row["llamacpp_cpu_prefill_tok_s"] = Json.Number(llama is null ? null : theirs.PrefillCpu(promptLen));
                        row["llamacpp_cpu_decode_tok_s"] = Json.Number(llama is null ? null : theirs.DecodeCpu(decodeLen));
                        // Estimated energy: CPU-seconds per token × the default device profile's watts per core (labelled).
                        double wattsPerCore = EdgeTune.Energy.DeviceProfile.Default.WattsPerCore;
                        row["est_decode_j_per_token"] = Json.Number(wattsPerCore / ours.DecodeCpu(decodeLen));
                        row["est_prefill_j_per_token"] = Json.Number(wattsPerCore / ours.PrefillCpu(promptLen));
                        row["energy_estimated"] = true;
                    }
                    results.Add(row);
                }
                if (File.Exists(gguf)) File.Delete(gguf);
            }
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
        Json.WriteLast(new JsonObject
        {
            ["suite"] = "generate", ["prompt_tokens"] = promptLen, ["decode_tokens"] = decodeLen, ["layers"] = cfg.NumHiddenLayers,
            ["results"] = results,
        });
        return 0;
    }

    private static DecoderModel ViaSafetensors(DecoderModel model, string folder, DType dtype)
    {
        ModelExporter.ExportSafetensors(model, folder, dtype);
        var reader = CheckpointReader.Open(folder);
        return DecoderModel.Load(reader, HfConfig.Load(Path.Combine(folder, "config.json")));
    }

    /// <summary>The same weights as an NF4 checkpoint (projections NF4, embedding BF16), loaded quantized.</summary>
    private static DecoderModel QuantizedViaSafetensors(DecoderModel model, string folder)
    {
        using (var bf16 = ViaSafetensors(model, folder + "-bf16", DType.BF16))
        {
            EdgeTune.Compression.Quantization.ModelQuantizer.Quantize(bf16, EdgeTune.Tensors.Quantized.QuantFormat.NF4);
            EdgeTune.Compression.Quantization.QuantizedCheckpoint.Save(bf16, folder);
        }
        var reader = CheckpointReader.Open(folder);
        return DecoderModel.Load(reader, HfConfig.Load(Path.Combine(folder, "config.json")));
    }

    private static string Fmt(double? v) => v is { } x ? x.ToString("F1") : "-";

    /// <summary>Seconds (wall and calling-thread CPU) of one prefill and of the greedy decode steps after it.</summary>
    /// <remarks><see cref="DecodeAllocBytes"/>: managed bytes the calling thread allocated over the decode steps
    /// (GC.GetAllocatedBytesForCurrentThread; the largest of the rounds; llama.cpp's rounds leave it 0).</remarks>
    private readonly record struct Best(double PrefillWall, double DecodeWall, double PrefillCpuS, double DecodeCpuS, long DecodeAllocBytes = 0)
    {
        public static readonly Best None = new(double.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue);

        public Best With(Best o) => new(Math.Min(PrefillWall, o.PrefillWall), Math.Min(DecodeWall, o.DecodeWall),
            Math.Min(PrefillCpuS, o.PrefillCpuS), Math.Min(DecodeCpuS, o.DecodeCpuS), Math.Max(DecodeAllocBytes, o.DecodeAllocBytes));

        public double Prefill(int tokens) => tokens / PrefillWall;
        public double Decode(int tokens) => tokens / DecodeWall;
        public double PrefillCpu(int tokens) => tokens / PrefillCpuS;
        public double DecodeCpu(int tokens) => tokens / DecodeCpuS;
    }

    /// <summary>A fresh cache, the prompt in one pass, then <paramref name="decodeLen"/> greedy single-token steps.</summary>
    private static Best OursRound(DecoderModel model, int[] prompt, int decodeLen)
    {
        var logits = new float[model.VocabSize];
        using var cache = model.CreateCache(prompt.Length + decodeLen);
        double c0 = CpuTime.Thread();
        long t0 = Stopwatch.GetTimestamp();
        model.Forward(prompt, cache, logits);
        double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds, prefillCpu = CpuTime.Thread() - c0;
        c0 = CpuTime.Thread();
        long alloc0 = GC.GetAllocatedBytesForCurrentThread();
        t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < decodeLen; i++) model.Forward([ArgMax(logits)], cache, logits);
        double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds, decodeCpu = CpuTime.Thread() - c0;
        return new Best(prefill, decode, prefillCpu, decodeCpu, GC.GetAllocatedBytesForCurrentThread() - alloc0);
    }

    internal static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>A 259-piece SentencePiece-style vocabulary (unk, BOS, EOS, 256 byte tokens) for the GGUF metadata.</summary>
    private static Llama2cTokenizer ByteTokenizer()
    {
        var pieces = new string[259];
        pieces[0] = "<unk>"; pieces[1] = "\n<s>\n"; pieces[2] = "\n</s>\n";
        for (int b = 0; b < 256; b++) pieces[3 + b] = $"<0x{b:X2}>";
        return new Llama2cTokenizer(pieces, new float[pieces.Length], 6);
    }

    /// <summary>llama.cpp through LLamaSharp, timed the same way as ours.</summary>
    private sealed class LlamaCppRunner : IDisposable
    {
        public static string? Probe()
        {
            try
            {
                NativeLibraryConfig.All.WithLogCallback((level, message) => { });
                NativeApi.llama_max_devices();
                return null;
            }
            catch (Exception e)
            {
                return $"{e.GetType().Name}: {e.Message}";
            }
        }

        private readonly ModelParams _params;
        private readonly LLamaWeights _weights;

        /// <summary>F32 KV cache and no flash attention, like ours; CPU only.</summary>
        public LlamaCppRunner(string gguf, int context, int threads)
        {
            _params = new ModelParams(gguf)
            {
                ContextSize = (uint)(context + 8), BatchSize = (uint)context, UBatchSize = (uint)context,
                Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
                TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
            };
            _weights = LLamaWeights.LoadFromFile(_params);
        }

        public void Dispose() => _weights.Dispose();

        /// <summary>A fresh context, the prompt in one batch, then greedy single-token decodes (argmax of its logits).</summary>
        public Best Round(int[] prompt, int decodeLen)
        {
            using var ctx = _weights.CreateContext(_params);
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
            double c0 = CpuTime.Thread();
            long t0 = Stopwatch.GetTimestamp();
            Check(ctx.Decode(batch));
            int next = ArgMax(ctx.NativeHandle.GetLogitsIth(prompt.Length - 1));
            double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds, prefillCpu = CpuTime.Thread() - c0;
            c0 = CpuTime.Thread();
            t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < decodeLen; i++)
            {
                batch.Clear();
                batch.Add(next, prompt.Length + i, LLamaSeqId.Zero, true);
                Check(ctx.Decode(batch));
                next = ArgMax(ctx.NativeHandle.GetLogitsIth(0));
            }
            return new Best(prefill, Stopwatch.GetElapsedTime(t0).TotalSeconds, prefillCpu, CpuTime.Thread() - c0);
        }

        private static void Check(DecodeResult r)
        {
            if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {r}");
        }
    }
}
