using System.CommandLine;
using System.Globalization;
using EdgeTune.Adapters;
using EdgeTune.Models.Bert;
using EdgeTune.Training;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune finetune --task embed|classify</c>: binds the flags (training, LoRA, power policies, energy
/// accounting and encryption at rest) to <see cref="EncoderJobOptions"/> and prints what <see cref="EncoderFineTuneJob"/>
/// measured and wrote.</summary>
internal static class FinetuneEncoder
{
    public static async Task<int> RunAsync(ParseResult parse, string task, Option<string?> model, Option<string?> data, Option<string?> method,
        Option<int> rank, Option<double?> alpha, Option<string> output, Option<bool> resume, Option<string?> maxMemory, TrainingCliOptions training, PowerPolicyCliOptions power,
        EncryptionCliOptions encryption, Action<TrainingStatus> show, CancellationToken ct)
    {
        string modelPath = parse.GetValue(model) ?? throw new CliException(CliErrors.Usage, $"--task {task} needs --model: the encoder's folder or .onnx file");
        string dataPath = parse.GetValue(data) ?? throw new CliException(CliErrors.Usage, $"--task {task} needs --data: a .jsonl or .tsv file");
        bool full = parse.GetValue(method) == "full";
        int r = parse.GetValue(rank);
        if (r <= 0) throw new CliException(CliErrors.Usage, "--rank must be positive");
        var defaults = new TrainingOptions { Steps = 100, MicroBatch = 16, SeqLen = 128, LearningRate = full ? 5e-5 : 1e-3, WarmupSteps = 10, EvalEvery = 0, CheckpointEvery = 50, WeightDecay = 0.01 };
        var t = training.Apply(parse, defaults);
        if (t.GradAccumulation != 1 && task == "embed") throw new CliException(CliErrors.Usage, "--grad-accum is not supported with --task embed (in-batch negatives need the whole batch in one pass)");
        long? budget = null;
        if (parse.GetValue(maxMemory) is { } m)
        {
            try { budget = MemoryPlanner.ParseBytes(m); }
            catch (FormatException e) { throw new CliException(CliErrors.Usage, $"--max-memory: {e.Message}"); }
        }
        var (policies, accounting, profile) = power.Bind(parse);
        // after the usage checks, so that a refused command creates no key file and no run folder
        using var key = encryption.BindForWriting(parse, parse.GetValue(output)!, parse.InvocationConfiguration.Error);
        var options = new EncoderJobOptions
        {
            Encryption = key,
            Power = policies,
            EnergyAccounting = accounting,
            DeviceProfile = profile,
            Model = modelPath,
            Data = dataPath,
            OutputDir = parse.GetValue(output)!,
            Resume = parse.GetValue(resume),
            MaxMemoryBytes = budget,
            Recipe = new EncoderFineTuneOptions
            {
                Task = task == "classify" ? EncoderTask.Classify : EncoderTask.Embed,
                Lora = full ? null : new LoraConfig { Rank = r, Alpha = parse.GetValue(alpha) ?? 2.0 * r, TargetModules = ["query", "key", "value", "dense"], InitSeed = t.Seed },
                Training = t with { EvalEvery = 0 },
            },
        };
        var progress = new SyncProgress(show);
        var result = await Task.Run(() => EncoderFineTuneJob.Run(options, progress, ct), ct).ConfigureAwait(false);
        var outp = parse.InvocationConfiguration.Output;
        var c = CultureInfo.InvariantCulture;
        foreach (string change in result.PlanChanges) await outp.WriteLineAsync($"memory plan: {change}").ConfigureAwait(false);
        if (result.Predicted is { } p) await outp.WriteLineAsync($"predicted peak memory: {MemoryPlanner.Format(p.Total)} (tensors {MemoryPlanner.Format(p.TensorBytes)}); measured peak tensor memory {MemoryPlanner.Format(result.Training.PeakTensorBytes)}").ConfigureAwait(false);
        if (result.ResumedFrom is { } from) await outp.WriteLineAsync($"resumed from {from}").ConfigureAwait(false);
        else if (options.Resume) await outp.WriteLineAsync("no valid checkpoint to resume from; started fresh").ConfigureAwait(false);
        await outp.WriteLineAsync(string.Create(c, $"trained on {result.TrainRows} rows, held out {result.HeldOutRows}")).ConfigureAwait(false);
        if (result.Before is { } b) await outp.WriteLineAsync(string.Create(c, $"held-out {result.Metric} before: {b:F4}")).ConfigureAwait(false);
        if (result.After is { } a) await outp.WriteLineAsync(string.Create(c, $"held-out {result.Metric} after:  {a:F4}")).ConfigureAwait(false);
        var tr = result.Training;
        await outp.WriteLineAsync(string.Create(c, $"stopped: {tr.Reason} at step {tr.LastStep}/{tr.TotalSteps}; loss {tr.Losses.FirstOrDefault():F4} -> {tr.Losses.LastOrDefault():F4}; trainable {result.TrainableParameters:N0} of {result.TotalParameters:N0} parameters")).ConfigureAwait(false);
        if (tr.Energy is { } energy) await outp.WriteLineAsync(FinetuneCommand.EnergySummary(energy)).ConfigureAwait(false);
        await outp.WriteLineAsync($"saved: {result.SavedTo}\nmetrics: {result.MetricsPath}").ConfigureAwait(false);
        if (key is not null) await outp.WriteLineAsync($"encrypted: every file of {options.OutputDir} (AES-256-GCM; read it back with the same key option)").ConfigureAwait(false);
        string keyHint = key is null ? "" : " <your key option>";
        await outp.WriteLineAsync(options.Recipe.Task == EncoderTask.Classify
            ? $"try: edgetune classify --model {result.SavedTo} --text \"...\"{keyHint}"
            : $"try: edgetune embed --model {result.SavedTo} --text \"...\"{keyHint}").ConfigureAwait(false);
        return tr.Reason == TrainingStopReason.NonFinite ? 1 : tr.Reason == TrainingStopReason.Cancelled ? CliErrors.Cancelled : 0;
    }

    private sealed class SyncProgress(Action<TrainingStatus> report) : IProgress<TrainingStatus>
    {
        public void Report(TrainingStatus value) => report(value);
    }
}
