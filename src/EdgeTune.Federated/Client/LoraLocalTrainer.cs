using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Energy;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Federated.Client;

/// <summary>
/// Local LoRA training for a federated client: loads the global adapter into <see cref="Adapter"/>, trains it
/// with the <see cref="Trainer"/> for the round's steps on this client's token stream (random windows, seeded by
/// the round), adds FedProx's μ·(w − w_global) to the gradients when μ &gt; 0, honours power policies, and returns
/// the change. Runs under <see cref="Gate"/> when given (in-process simulations share the worker threads).
/// </summary>
public sealed class LoraLocalTrainer(DecoderModel model, LoraAdapter adapter, int[] trainTokens, int[]? validationTokens = null) : ILocalTrainer
{
    public DecoderModel Model { get; } = model ?? throw new ArgumentNullException(nameof(model));
    public LoraAdapter Adapter { get; } = adapter ?? throw new ArgumentNullException(nameof(adapter));

    /// <summary>Power policies evaluated between local steps (pause, throttle, stop).</summary>
    public PolicyEngine? PowerPolicies { get; init; }

    /// <summary>Held while training or evaluating (one client at a time in a shared process).</summary>
    public SemaphoreSlim? Gate { get; init; }

    /// <summary>Mixed into the round's seed so clients read different windows.</summary>
    public ulong ClientSeed { get; init; }

    /// <summary>Validation micro-batches for <see cref="Evaluate"/>.</summary>
    public int EvalBatches { get; init; } = 4;

    public int SequenceLength { get; init; } = 128;

    public long NumExamples => Math.Max(1, (trainTokens.Length - 1) / SequenceLength);

    public LocalFitResult Fit(LocalFitRequest request, CancellationToken cancellationToken)
    {
        var fit = request.Fit;
        Gate?.Wait(cancellationToken);
        try
        {
            AdapterVector.Write(Adapter, request.Global);
            var options = new TrainingOptions
            {
                Steps = Math.Max(1, fit.LocalSteps), MicroBatch = fit.BatchSize, SeqLen = fit.SequenceLength, LearningRate = fit.LearningRate,
                WarmupSteps = 0, Schedule = LrScheduleKind.Constant, EvalEvery = 0, CheckpointEvery = 0, MaxGradNorm = 1.0,
                Seed = (ulong)(uint)fit.Seed ^ (ClientSeed * 0x9E3779B97F4A7C15UL),
            };
            var trainable = new DelegateTrainableModel(Adapter.Parameters, (tape, tok, tgt, b, t) => Model.Loss(tape, tok, tgt, b, t));
            var source = new TokenStreamBatchSource(trainTokens, shuffle: true, seed: options.Seed);
            float[] global = request.Global;
            var proximal = fit.ProximalMu > 0 ? ProximalTerm.Snapshot(fit.ProximalMu, Adapter.Parameters) : null; // FedProx, against the global adapter just loaded
            using var trainer = new Trainer(trainable, source, options)
            {
                AfterBackward = proximal is null ? null : proximal.Apply,
                PowerPolicies = PowerPolicies,
            };
            var result = trainer.Run(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            var local = AdapterVector.Read(Adapter);
            var delta = new float[local.Length];
            for (int i = 0; i < delta.Length; i++) delta[i] = local[i] - global[i];
            var losses = result.Losses.Where(double.IsFinite).ToList();
            var metrics = new Dictionary<string, double> { ["steps"] = result.LastStep - result.FirstStep };
            if (losses.Count > 0) metrics["train_loss"] = losses.Average();
            return new LocalFitResult(delta, NumExamples, metrics);
        }
        finally
        {
            Gate?.Release();
        }
    }

    public IReadOnlyDictionary<string, double>? Evaluate(UpdateLayout layout, float[] global)
    {
        if (validationTokens is not { Length: > 1 }) return null;
        Gate?.Wait();
        try
        {
            AdapterVector.Write(Adapter, global);
            double loss = MeanLoss(Model, validationTokens, SequenceLength, EvalBatches);
            return new Dictionary<string, double> { ["loss"] = loss, ["ppl"] = Math.Exp(loss) };
        }
        finally
        {
            Gate?.Release();
        }
    }

    /// <summary>Mean next-token loss over the first <paramref name="batches"/> windows of <paramref name="seqLen"/>
    /// tokens (fewer when the stream is short), without recording a tape.</summary>
    public static double MeanLoss(DecoderModel model, int[] tokens, int seqLen, int batches)
    {
        var source = new TokenStreamBatchSource(tokens);
        int windows = (int)Math.Min(batches, Math.Max(1, (tokens.Length - 1) / seqLen));
        double sum = 0;
        for (int i = 0; i < windows; i++)
        {
            var b = source.Next(1, seqLen);
            using var tape = new Tape { IsRecording = false };
            sum += model.Loss(tape, b.Tokens, b.Targets, b.Batch, b.Time).Item();
        }
        return sum / windows;
    }
}
