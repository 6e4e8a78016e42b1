using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Bench.Common;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Training throughput on SmolLM2-135M shapes (random weights): LoRA r=16 on all attention and MLP
/// projections, and full fine-tuning, sequence 256, micro-batch 4 (best measured throughput; --batch N), AdamW. Reports tokens/s, model
/// FLOPs utilisation against the FMA peak measured in the same run at the same thread count, peak RSS
/// against the memory planner's prediction, CPU-seconds per token, and a per-op time breakdown.
/// Each configuration runs in its own child process (same executable), so each peak RSS is its own.
/// QLoRA rows (issue #5): "lora-ckpt" is LoRA on the F32 base and "qlora-nf4" LoRA on an NF4 base, both with
/// activation checkpointing; the NF4 base is loaded the way a user would run QLoRA, from an NF4 checkpoint
/// (EdgeTune's quantized safetensors: projections and the tied embedding/LM head NF4, written by the parent process
/// from the same random weights), so its peak RSS never holds the F32 model. EDGETUNE_BENCH_TRAIN_METHODS
/// (comma-separated, default lora,full,lora-ckpt,qlora-nf4) picks the rows.
/// </summary>
public sealed class TrainSuite : IBenchSuite
{
    /// <summary>Set in a child process: "method:threads" of the one configuration it runs.</summary>
    private const string ChildVariable = "EDGETUNE_BENCH_TRAIN_CHILD";
    /// <summary>Set in a child process: the NF4 checkpoint folder the qlora-nf4 row loads.</summary>
    private const string QloraFolderVariable = "EDGETUNE_BENCH_TRAIN_QLORA_FOLDER";
    private const int SeqLen = 256, LoraRank = 16, QuickLayers = 4;

    /// <summary>Measured best tokens/s at 2 threads on a quiet AVX-512 machine: 1 -> 205, 2 -> 224, 4 -> 240 LoRA tokens/s.</summary>
    private const int DefaultMicroBatch = 4;

    public string Name => "train";
    public string Description => "SmolLM2-135M-shaped LoRA and full fine-tuning: tokens/s, MFU, peak RSS vs plan, CPU-s/token";

    /// <summary>SmolLM2-135M's shapes; <paramref name="layers"/> fewer for a quick check. EDGETUNE_BENCH_TRAIN_CONFIG names another
    /// config.json (any family: qwen3, gemma3_text, phi3 ...) run with the same settings; EDGETUNE_BENCH_TRAIN_LAYERS sets the depth.</summary>
    public static HfConfig Config(int layers)
    {
        if (Environment.GetEnvironmentVariable("EDGETUNE_BENCH_TRAIN_LAYERS") is { Length: > 0 } l) layers = int.Parse(l, CultureInfo.InvariantCulture);
        if (Environment.GetEnvironmentVariable("EDGETUNE_BENCH_TRAIN_CONFIG") is { Length: > 0 } path)
        {
            var c = HfConfig.Load(path);
            var cut = c with { NumHiddenLayers = layers, MaxPositionEmbeddings = Math.Max(SeqLen, Math.Min(c.MaxPositionEmbeddings, 8192)) };
            return cut.RawStringList("layer_types") is { } types ? cut.WithRaw(("layer_types", types.Take(layers).ToArray())) : cut;
        }
        return SmolLm2(layers);
    }

    private static HfConfig SmolLm2(int layers) => new()
    {
        ModelType = "llama", HiddenSize = 576, IntermediateSize = 1536, NumHiddenLayers = layers, NumAttentionHeads = 9,
        NumKeyValueHeads = 3, HeadDim = 64, VocabSize = 49152, RopeTheta = 100000, TieWordEmbeddings = true,
        MaxPositionEmbeddings = 8192, RmsNormEps = 1e-5,
    };

    public int Run(BenchOptions options)
    {
        if (Environment.GetEnvironmentVariable(ChildVariable) is { Length: > 0 } child)
        {
            var parts = child.Split(':');
            return RunChild(parts[0], int.Parse(parts[1], CultureInfo.InvariantCulture), options.Quick, options.Batch ?? DefaultMicroBatch);
        }

        int[] threadCounts = options.Threads is { } t ? [t] : [2, 1];
        int layers = options.Quick ? QuickLayers : 30, microBatch = options.Batch ?? DefaultMicroBatch;
        var config = Config(layers);
        Console.WriteLine($"train suite: SIMD {Simd.Width}, {Environment.ProcessorCount} processors; {(Environment.GetEnvironmentVariable("EDGETUNE_BENCH_TRAIN_CONFIG") is { Length: > 0 } cfgPath ? $"{config.ModelType} shapes from {cfgPath}" : "SmolLM2-135M shapes")}, {config.NumHiddenLayers} layers" +
            (options.Quick ? " (QUICK: fewer layers and steps)" : "") + $", seq {SeqLen}, micro-batch {microBatch} (--batch N), random weights, F32, AdamW");
        Console.WriteLine("each configuration runs in a child process of the same executable (its own peak RSS); wall-clock figures on a shared machine are noisy");
        foreach (string line in FlopCount.Describe(config, SeqLen, LoraRank)) Console.WriteLine(line);

        string[] methods = (Environment.GetEnvironmentVariable("EDGETUNE_BENCH_TRAIN_METHODS") is { Length: > 0 } m ? m : "lora,full,lora-ckpt,qlora-nf4")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string? qloraFolder = methods.Contains("qlora-nf4") ? QloraBench.WriteNf4Checkpoint(config) : null;
        var peak = new JsonObject();
        var results = new JsonArray();
        foreach (int th in threadCounts)
        {
            double p = FmaPeak.Measure(th, options.Quick ? 0.3 : 1.0);
            peak[th.ToString(CultureInfo.InvariantCulture)] = Json.Number(p);
            Console.WriteLine($"FMA peak, {th} thread(s): {p:F1} GFLOP/s");
            foreach (string method in methods)
            {
                var row = Spawn(method, th, options.Quick, microBatch, qloraFolder);
                if (row is null) { Console.WriteLine($"{method} at {th} thread(s): child failed"); continue; }
                double gflops = row["achieved_gflops"]!.GetValue<double>();
                row["peak_gflops"] = Json.Number(p);
                row["mfu"] = Json.Number(gflops / p, 3);
                // The FMA peak is taken from per-thread CPU time (immune to other processes); the same
                // work per CPU-second against one thread's share of it is the load-independent figure.
                double perCpu = row["achieved_gflops_per_cpu_s"]!.GetValue<double>();
                row["mfu_cpu"] = Json.Number(perCpu / (p / th), 3);
                Console.WriteLine($"==> {method}, {th} thread(s): {row["tokens_per_s"]} tokens/s, {gflops:F1} GFLOP/s of {p:F1} peak = MFU {gflops / p:P1}, " +
                    $"by CPU time {perCpu:F1} GFLOP/CPU-s = MFU {perCpu / (p / th):P1} of one thread's peak; peak RSS {row["peak_rss_mb"]} MB (planner {row["predicted_peak_mb"]} MB), {row["cpu_s_per_token"]} CPU-s/token");
                results.Add(row);
            }
        }
        if (qloraFolder is not null)
        {
            QloraBench.Compare(results);
            try { Directory.Delete(qloraFolder, recursive: true); } catch (IOException) { }
        }
        Json.WriteLast(new JsonObject
        {
            ["suite"] = "train", ["simd"] = Simd.Width.ToString(), ["layers"] = layers, ["quick"] = options.Quick,
            ["peak_gflops"] = peak, ["results"] = results,
        });
        return 0;
    }

    /// <summary>Runs one configuration in a child process, echoes its output, returns its JSON row.</summary>
    private static JsonObject? Spawn(string method, int threads, bool quick, int microBatch, string? qloraFolder)
    {
        string exe = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            psi.ArgumentList.Add(typeof(TrainSuite).Assembly.Location);
        psi.ArgumentList.Add("train");
        if (quick) psi.ArgumentList.Add("--quick");
        psi.ArgumentList.Add("--batch");
        psi.ArgumentList.Add(microBatch.ToString(CultureInfo.InvariantCulture));
        psi.Environment[ChildVariable] = $"{method}:{threads}";
        if (qloraFolder is not null) psi.Environment[QloraFolderVariable] = qloraFolder;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        string? last = null;
        while (p.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith('{')) last = line;
            else Console.WriteLine("  " + line);
        }
        p.WaitForExit();
        return p.ExitCode == 0 && last is not null ? JsonNode.Parse(last) as JsonObject : null;
    }

    private static int RunChild(string method, int threads, bool quick, int microBatch)
    {
        int layers = quick ? QuickLayers : 30, warmup = quick ? 1 : 2, timed = quick ? 2 : 5;
        var config = Config(layers);
        WorkerPool.Configure(threads);
        bool lora = method != "full", qlora = method == "qlora-nf4";
        var training = new TrainingOptions
        {
            Steps = warmup + timed, MicroBatch = microBatch, SeqLen = SeqLen, LearningRate = 1e-4, WarmupSteps = 0,
            EvalEvery = 0, CheckpointEvery = 0, MaxGradNorm = 1.0, ActivationCheckpointing = method is "lora-ckpt" or "qlora-nf4",
        };
        var request = MemoryPlanRequest.From(config, training, lora ? FineTuneMethod.Lora : FineTuneMethod.Full, LoraRank, LoraConfig.AllLlamaProjections,
                qlora ? DType.BF16 : DType.F32)
            with { Threads = threads, BaseQuantization = qlora ? EdgeTune.Tensors.Quantized.QuantFormat.NF4 : null, QuantizedEmbeddings = qlora };
        var predicted = MemoryPlanner.Estimate(request);

        using var model = qlora
            ? QloraBench.LoadNf4(Environment.GetEnvironmentVariable(QloraFolderVariable) ?? throw new InvalidOperationException($"{QloraFolderVariable} is not set"))
            : DecoderModel.CreateRandom(config, seed: 1, trainable: !lora);
        model.ActivationCheckpointing = training.ActivationCheckpointing;
        LoraAdapter? adapter = lora
            ? LoraInjector.Apply(model, new LoraConfig { Rank = LoraRank, Alpha = 32, TargetModules = LoraConfig.AllLlamaProjections })
            : null;
        var trainable = adapter?.Parameters ?? model.Parameters;
        var trainableModel = new DelegateTrainableModel(trainable, (tape, tok, tgt, b, t) => model.Loss(tape, tok, tgt, b, t, training.VocabChunk));
        var rng = new Rng(7);
        int[] tokens = new int[(warmup + timed + 1) * microBatch * (SeqLen + 1)];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(config.VocabSize);

        var profile = new OpProfile();
        var stepWall = new List<double>();
        long stepStart = 0, timedStartTicks = 0;
        double timedStartCpu = 0, timedStartJoules = 0;
        // Energy over the timed steps: a real meter (RAPL, battery) where readable, else the labelled CPU-time estimate.
        var meter = EdgeTune.Energy.EnergyMeterDiscovery.Discover(new EdgeTune.Energy.EnergyDiscoveryOptions()).Total;
        using var trainer = new Trainer(trainableModel, new TokenStreamBatchSource(tokens), training)
        {
            PredictedMemory = predicted,
            BeforeStep = step =>
            {
                long now = Stopwatch.GetTimestamp();
                if (step > 1) stepWall.Add(Stopwatch.GetElapsedTime(stepStart, now).TotalSeconds);
                stepStart = now;
                if (step == warmup + 1)
                {
                    timedStartTicks = now;
                    timedStartCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
                    timedStartJoules = meter.ReadJoules();
                    Tape.OpTimer = profile.Add;
                }
            },
        };
        var result = trainer.Run();
        long end = Stopwatch.GetTimestamp();
        Tape.OpTimer = null;
        double cpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds - timedStartCpu;
        double joules = meter.ReadJoules() - timedStartJoules;
        double wall = Stopwatch.GetElapsedTime(timedStartTicks, end).TotalSeconds;
        stepWall.Add(Stopwatch.GetElapsedTime(stepStart, end).TotalSeconds);
        if (result.Reason != TrainingStopReason.Completed) { Console.Error.WriteLine(result.Message); return 1; }

        long timedTokens = (long)timed * training.TokensPerStep;
        double flopsPerToken = FlopCount.PerToken(config, SeqLen, lora ? LoraRank : 0);
        double achieved = flopsPerToken * timedTokens / wall / 1e9;
        long rss = ProcessMemory.PeakRssBytes();
        Console.WriteLine($"{method}, {threads} thread(s), {layers} layers: {trainable.TrainableElementCount:N0} trainable of {model.Parameters.ElementCount:N0}; " +
            $"step seconds {string.Join(" ", stepWall.Select(s => s.ToString("F2", CultureInfo.InvariantCulture)))} ({warmup} warm-up, {timed} timed); " +
            $"loss {result.Losses[0]:F3} -> {result.Losses[^1]:F3}");
        Console.WriteLine($"{method}: {flopsPerToken / 1e9:F3} GFLOP/token x {timedTokens} tokens in {wall:F2} s = {achieved:F1} GFLOP/s; CPU {cpu:F2} s ({cpu / wall:F2} cores busy)");
        Console.WriteLine($"{method}: peak RSS {MemoryPlanner.Format(rss)} vs planner {MemoryPlanner.Format(predicted.Total)} ({predicted})");
        Console.WriteLine($"{method}: {joules / timedTokens:F4} J/token ({(meter.IsEstimate ? "ESTIMATE from CPU time" : "measured")} by {meter.Id})");
        foreach (string line in profile.Describe(wall)) Console.WriteLine(line);

        var row = new JsonObject
        {
            ["method"] = method, ["activation_checkpointing"] = training.ActivationCheckpointing, ["threads"] = threads, ["seq_len"] = SeqLen, ["micro_batch"] = microBatch, ["layers"] = layers,
            ["tokens_per_s"] = Json.Number(timedTokens / wall, 1),
            ["achieved_gflops"] = Json.Number(achieved, 2),
            ["achieved_gflops_per_cpu_s"] = Json.Number(flopsPerToken * timedTokens / cpu / 1e9, 2),
            ["gflop_per_token"] = Json.Number(flopsPerToken / 1e9, 4),
            ["peak_rss_mb"] = Json.Number(rss / 1e6, 0),
            ["predicted_peak_mb"] = Json.Number(predicted.Total / 1e6, 0),
            ["cpu_s_per_token"] = Json.Number(cpu / timedTokens, 5),
            ["joules_per_token"] = Json.Number(joules / timedTokens, 5),
            ["energy_estimated"] = meter.IsEstimate,
            ["energy_meter"] = meter.Id,
            ["time_share"] = profile.Shares(wall),
        };
        Json.WriteLast(row);
        adapter?.Dispose();
        return 0;
    }
}
