using System.Diagnostics;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models.Llama;
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
/// CPU BF16 path is not what users run; labelled "f16" in llamacpp_dtype). Both use an F32 KV cache.
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
            using var f32Model = LlamaModel.CreateRandom(cfg, 7);
            foreach (var (dtype, ggufType, label, gguflabel) in new[] { (DType.F32, DType.F32, "f32", "f32"), (DType.BF16, DType.F16, "bf16", "f16") })
            {
                // BF16 weights as a user gets them: a BF16 safetensors checkpoint, memory-mapped, norms widened to F32.
                using var converted = dtype == DType.F32 ? null : ViaSafetensors(f32Model, Path.Combine(dir, label), dtype);
                var model = converted ?? f32Model;
                string gguf = Path.Combine(dir, $"smollm2-shaped-{gguflabel}.gguf");
                if (llamaError is null) ModelExporter.ExportGguf(model, ByteTokenizer(), gguf, ggufType);
                foreach (int threads in threadCounts)
                {
                    WorkerPool.Configure(threads);
                    var (prefill, decode) = Ours(model, prompt, decodeLen, reps);
                    (double Prefill, double Decode)? theirs = llamaError is null ? LlamaCppRunner.Measure(gguf, prompt, decodeLen, reps, threads) : null;
                    Console.WriteLine($"{label,-5} {threads,3} {prefill,14:F1} {decode,13:F1} {gguflabel,10} {Fmt(theirs?.Prefill),10} {Fmt(theirs?.Decode),10}");
                    results.Add(new JsonObject
                    {
                        ["dtype"] = label, ["threads"] = threads,
                        ["prefill_tok_s"] = Json.Number(prefill), ["decode_tok_s"] = Json.Number(decode),
                        ["llamacpp_dtype"] = gguflabel,
                        ["llamacpp_prefill_tok_s"] = Json.Number(theirs?.Prefill), ["llamacpp_decode_tok_s"] = Json.Number(theirs?.Decode),
                    });
                }
                File.Delete(gguf);
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

    private static LlamaModel ViaSafetensors(LlamaModel model, string folder, DType dtype)
    {
        ModelExporter.ExportSafetensors(model, folder, dtype);
        var reader = CheckpointReader.Open(folder);
        return LlamaModel.Load(reader, HfConfig.Load(Path.Combine(folder, "config.json")));
    }

    private static string Fmt(double? v) => v is { } x ? x.ToString("F1") : "-";

    /// <summary>Best prefill and decode tokens/s: a fresh cache per repetition, the prompt in one pass, then greedy steps.</summary>
    private static (double Prefill, double Decode) Ours(LlamaModel model, int[] prompt, int decodeLen, int reps)
    {
        var logits = new float[model.VocabSize];
        double bestPrefill = double.MaxValue, bestDecode = double.MaxValue;
        for (int r = 0; r < reps + 1; r++) // the first round warms up (tiered compilation, page faults)
        {
            using var cache = model.CreateCache(prompt.Length + decodeLen);
            long t0 = Stopwatch.GetTimestamp();
            model.Forward(prompt, cache, logits);
            double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < decodeLen; i++) model.Forward([ArgMax(logits)], cache, logits);
            double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            if (r == 0 && reps > 0) continue;
            bestPrefill = Math.Min(bestPrefill, prefill);
            bestDecode = Math.Min(bestDecode, decode);
        }
        return (prompt.Length / bestPrefill, decodeLen / bestDecode);
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
    private static class LlamaCppRunner
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

        public static (double Prefill, double Decode) Measure(string gguf, int[] prompt, int decodeLen, int reps, int threads)
        {
            uint ctxLen = (uint)(prompt.Length + decodeLen + 8);
            var p = new ModelParams(gguf)
            {
                ContextSize = ctxLen, BatchSize = (uint)prompt.Length, UBatchSize = (uint)prompt.Length,
                Threads = threads, BatchThreads = threads, GpuLayerCount = 0,
                TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
            };
            using var weights = LLamaWeights.LoadFromFile(p);
            double bestPrefill = double.MaxValue, bestDecode = double.MaxValue;
            var batch = new LLamaBatch();
            for (int r = 0; r < reps + 1; r++)
            {
                using var ctx = weights.CreateContext(p);
                batch.Clear();
                for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
                long t0 = Stopwatch.GetTimestamp();
                Check(ctx.Decode(batch));
                var row = ctx.NativeHandle.GetLogitsIth(prompt.Length - 1);
                double prefill = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                int next = ArgMax(row);
                t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < decodeLen; i++)
                {
                    batch.Clear();
                    batch.Add(next, prompt.Length + i, LLamaSeqId.Zero, true);
                    Check(ctx.Decode(batch));
                    next = ArgMax(ctx.NativeHandle.GetLogitsIth(0));
                }
                double decode = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                if (r == 0 && reps > 0) continue;
                bestPrefill = Math.Min(bestPrefill, prefill);
                bestDecode = Math.Min(bestDecode, decode);
            }
            return (prompt.Length / bestPrefill, decodeLen / bestDecode);
        }

        private static void Check(DecodeResult r)
        {
            if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {r}");
        }
    }
}
