using System.Diagnostics;
using EdgeTune.Adapters;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Federated.Simulation;

/// <summary>Settings of an in-process federated simulation.</summary>
public sealed record FlSimulationOptions
{
    public int Clients { get; init; } = 10;
    public int Rounds { get; init; } = 5;
    /// <summary>Probability that a client drops out of a round (half before training, half mid-upload, or after masking
    /// with secure aggregation); it comes back later.</summary>
    public double Dropout { get; init; }
    /// <summary>Contiguous shards of the text per client (true) or windows dealt round-robin (false).</summary>
    public bool NonIid { get; init; } = true;
    public string Strategy { get; init; } = "fedavg";
    public StrategyOptions StrategyOptions { get; init; } = new();
    public FitInstructions Fit { get; init; } = new() { LocalSteps = 10, BatchSize = 4, SequenceLength = 128, LearningRate = 2e-3 };
    public LoraConfig Lora { get; init; } = new() { Rank = 8, Alpha = 16, TargetModules = LoraConfig.AllProjections };
    public double FractionFit { get; init; } = 1.0;
    /// <summary>Accepted updates a round needs (default: half the clients, at least 1).</summary>
    public int? MinQuorum { get; init; }
    public string? Compression { get; init; }
    public double DpClipNorm { get; init; }
    public double DpNoiseMultiplier { get; init; }
    public bool DpLocal { get; init; }
    public bool SecureAggregation { get; init; }
    /// <summary>Secure aggregation's threshold t (null: the server's default, ⌊clients/2⌋ + 1).</summary>
    public int? SecAggThreshold { get; init; }
    /// <summary>Validation windows evaluated on the global adapter after each round.</summary>
    public int EvalBatches { get; init; } = 16;
    public ulong Seed { get; init; } = 1234;
    /// <summary>Server state folder (default: a new temporary folder).</summary>
    public string? StateFolder { get; init; }
    /// <summary>A straggler is given up after this long without a call.</summary>
    public TimeSpan LivenessTimeout { get; init; } = TimeSpan.FromSeconds(3);
}

/// <summary>What a simulation measured.</summary>
public sealed record FlSimulationResult(IReadOnlyList<FlRoundResult> Rounds, double InitialLoss, double FinalLoss, long TotalClientSteps,
    TimeSpan Elapsed, string StateFolder, float[] FinalGlobal)
{
    public double InitialPerplexity => Math.Exp(InitialLoss);
    public double FinalPerplexity => Math.Exp(FinalLoss);
}

/// <summary>
/// Runs a federated LoRA fine-tuning in one process over real gRPC on 127.0.0.1: a <see cref="FlServer"/> behind
/// <see cref="FlServerHost"/> and N <see cref="FlClient"/>s, each with its own shard of the training tokens. One model
/// and one adapter are shared: clients (and the server's evaluation) take turns under a gate, since they would share
/// the worker threads anyway. Dropped-out clients go silent and come back, resuming a pending upload when their
/// round is still open. <see cref="RunCentralised"/> trains the same adapter on all the data at the same budget.
/// </summary>
public static class FlSimulation
{
    public static async Task<FlSimulationResult> RunAsync(DecoderModel model, int[] trainTokens, int[] validationTokens, FlSimulationOptions options,
        IProgress<FlRoundResult>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var fit = options.Fit;
        var shards = TextSplit.Split(trainTokens, options.Clients, options.NonIid, fit.SequenceLength + 1);
        var adapter = LoraInjector.Apply(model, options.Lora, "federated");
        using var removal = new Removal(adapter);
        var layout = AdapterVector.LayoutOf(adapter);
        var initial = AdapterVector.Read(adapter);
        using var gate = new SemaphoreSlim(1, 1);
        double Eval(float[] global)
        {
            gate.Wait();
            try
            {
                AdapterVector.Write(adapter, global);
                return LoraLocalTrainer.MeanLoss(model, validationTokens, fit.SequenceLength, options.EvalBatches);
            }
            finally { gate.Release(); }
        }
        double initialLoss = Eval(initial);
        string folder = options.StateFolder ?? Path.Combine(Path.GetTempPath(), "edgetune-flsim-" + Guid.NewGuid().ToString("N")[..10]);
        string token = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var serverOptions = new FlServerOptions
        {
            StateFolder = folder, EnrolmentToken = token, Rounds = options.Rounds, MinClients = options.Clients,
            MinQuorum = options.MinQuorum ?? Math.Max(1, options.Clients / 2), FractionFit = options.FractionFit, Fit = fit,
            Strategy = options.Strategy, StrategyOptions = options.StrategyOptions, LivenessTimeout = options.LivenessTimeout,
            RoundDeadline = TimeSpan.FromMinutes(30), DpClipNorm = options.DpClipNorm, DpNoiseMultiplier = options.DpNoiseMultiplier,
            DpLocal = options.DpLocal, SecureAggregation = options.SecureAggregation, SecAggThreshold = options.SecAggThreshold, Seed = options.Seed,
            UpdateEncoding = options.Compression ?? "f32", RateLimitPerSecond = 1000,
        };
        var sw = Stopwatch.StartNew();
        using var server = new FlServer(serverOptions, layout, initial, g =>
        {
            double loss = Eval(g);
            return new Dictionary<string, double> { ["loss"] = loss, ["ppl"] = Math.Exp(loss) };
        });
        if (progress is not null) server.RoundCompleted += progress.Report;
        await using var host = await FlServerHost.StartAsync(server, new FlHostOptions(), ct).ConfigureAwait(false);
        var clients = new List<FlClient>();
        try
        {
            for (int i = 0; i < options.Clients; i++)
            {
                var trainer = new LoraLocalTrainer(model, adapter, shards[i]) { Gate = gate, ClientSeed = (ulong)i + 1, SequenceLength = fit.SequenceLength };
                var rng = new Rng(options.Seed ^ (0xD1B54A32D192ED03UL * (ulong)(i + 1)));
                clients.Add(new FlClient(new FlClientOptions
                {
                    Server = host.Url, Token = token, DisplayName = $"sim-{i}", HeartbeatInterval = TimeSpan.FromMilliseconds(500),
                    DropoutSilence = options.LivenessTimeout * 2, EvaluateGlobal = false, Compression = options.Compression,
                    Dropout = options.Dropout > 0 ? _ => rng.NextDouble() >= options.Dropout ? FlDropout.None
                        : rng.NextDouble() < 0.5 ? FlDropout.BeforeTraining
                        : options.SecureAggregation ? FlDropout.AfterMasking : FlDropout.MidUpload : null,
                }, trainer));
            }
            var summaries = await Task.WhenAll(clients.Select(c => c.RunAsync(ct))).ConfigureAwait(false);
            await server.Completion.WaitAsync(ct).ConfigureAwait(false);
            var rounds = server.Results();
            double finalLoss = rounds.Count > 0 && rounds[^1].Evaluation.TryGetValue("loss", out double l) ? l : Eval(server.Global);
            long steps = summaries.Sum(s => (long)s.Accepted) * fit.LocalSteps;
            return new FlSimulationResult(rounds, initialLoss, finalLoss, steps, sw.Elapsed, folder, server.Global);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    /// <summary>Centralised baseline: the same LoRA trained on all of <paramref name="trainTokens"/> for
    /// <paramref name="steps"/> steps of the same batch, sequence length and learning rate; returns (initial, final) validation loss.</summary>
    public static (double InitialLoss, double FinalLoss) RunCentralised(DecoderModel model, int[] trainTokens, int[] validationTokens, FlSimulationOptions options,
        int steps, CancellationToken ct = default)
    {
        var fit = options.Fit;
        using var adapter = LoraInjector.Apply(model, options.Lora, "centralised");
        try
        {
            double before = LoraLocalTrainer.MeanLoss(model, validationTokens, fit.SequenceLength, options.EvalBatches);
            var trainable = new DelegateTrainableModel(adapter.Parameters, (tape, tok, tgt, b, t) => model.Loss(tape, tok, tgt, b, t));
            var training = new TrainingOptions
            {
                Steps = steps, MicroBatch = fit.BatchSize, SeqLen = fit.SequenceLength, LearningRate = fit.LearningRate, WarmupSteps = 0,
                Schedule = LrScheduleKind.Constant, EvalEvery = 0, CheckpointEvery = 0, MaxGradNorm = 1.0, Seed = options.Seed,
            };
            using (var trainer = new Trainer(trainable, new TokenStreamBatchSource(trainTokens, shuffle: true, seed: options.Seed), training))
                trainer.Run(ct);
            double after = LoraLocalTrainer.MeanLoss(model, validationTokens, fit.SequenceLength, options.EvalBatches);
            return (before, after);
        }
        finally
        {
            adapter.Remove();
        }
    }

    /// <summary>Takes an adapter off its model at the end of a scope.</summary>
    private sealed class Removal(LoraAdapter adapter) : IDisposable
    {
        public void Dispose() => adapter.Remove();
    }
}
