using System.CommandLine;
using System.Globalization;
using EdgeTune.Adapters;
using EdgeTune.Training;
using EdgeTune.Training.FineTuning;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune finetune</c>: binds flags to <see cref="FineTuneOptions"/> and shows progress; the work is
/// <see cref="FineTuneJob"/>'s. With no --model the built-in pre-trained stories260K is fine-tuned offline, by default
/// on the built-in demo stories, showing its answers to the demo prompts before and after.</summary>
public static class FinetuneCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model folder/file or Hugging Face id; default: the built-in stories260K (TinyStories, MIT)" };
        var tokenizer = ModelOptions.Tokenizer();
        var data = new Option<string?>("--data") { Description = "Training data: .txt, or rows (text, instruction/input/output, messages, conversations, prompt/completion) in .jsonl, .json, .csv/.tsv or .parquet; or a Hub dataset hf://datasets/org/name[@revision][/config][/split] (cached like models); default: the built-in demo stories (they teach the built-in model about Zog the dragon)" };
        var method = new Option<string?>("--method") { Description = "lora or full (default: lora; full for the built-in model)" };
        method.AcceptOnlyFromAmong("lora", "full");
        var rank = new Option<int>("--rank") { Description = "LoRA rank", DefaultValueFactory = _ => 16 };
        var alpha = new Option<double?>("--alpha") { Description = "LoRA alpha (default 2 x rank)" };
        var epochs = new Option<double?>("--epochs") { Description = "Passes over the data (instead of --steps)" };
        var checkpointing = new Option<bool>("--activation-checkpointing") { Description = "Recompute each block in backward (less memory)" };
        var training = new TrainingCliOptions("Seed of data order, init and dropout");
        var output = new Option<string>("--out") { Description = "Run folder", DefaultValueFactory = _ => Path.Combine("runs", "finetune") };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest valid checkpoint in --out" };
        var maxMemory = new Option<string?>("--max-memory") { Description = "Memory budget, e.g. 2GB: settings are chosen to fit or the run is refused" };
        var prompt = new Option<string?>("--prompt") { Description = "Prompt to generate from after training" };
        var qat = new Option<string?>("--qat") { Description = "Quantization-aware training: fake-quantize the projection weights (nf4, q4_0, q8_0, int8) while training; the F32 weights are saved" };
        qat.AcceptOnlyFromAmong("nf4", "q4_0", "q8_0", "int8");
        var qatActivations = new Option<bool>("--qat-activations") { Description = "With --qat: also fake-quantize projection inputs per token to int8" };
        var baseDtype = new Option<string?>("--base-dtype") { Description = "QLoRA: quantize the frozen base's projections to nf4, q4_0, q8_0 or int8 before LoRA (releases the float weights)" };
        var dpEpsilon = new Option<double?>("--dp-epsilon") { Description = "Differentially private LoRA fine-tuning (DP-SGD): the ε to reach at --dp-delta over the planned steps; the noise multiplier is calibrated to it (RDP accountant, Poisson-sampling assumption)" };
        var dpNoise = new Option<double?>("--dp-noise") { Description = "DP-SGD with this noise multiplier σ instead of a target ε (ε spent is reported)" };
        var dpPerExample = new Option<string>("--dp-per-example")
        {
            Description = "How DP-SGD gets per-example gradients: ghost (one batched pass, per-example norms from the LoRA layers; fast, batched memory) or loop (one pass per example; least memory)",
            DefaultValueFactory = _ => "ghost",
        };
        dpPerExample.AcceptOnlyFromAmong("ghost", "loop");
        var dpDelta = new Option<double>("--dp-delta") { Description = "δ of the DP guarantee (keep it below 1 / training sequences)", DefaultValueFactory = _ => 1e-5 };
        var dpClip = new Option<double>("--dp-clip") { Description = "DP-SGD per-example gradient clipping norm C", DefaultValueFactory = _ => 1.0 };
        var task = new Option<string?>("--task") { Description = "embed or classify: fine-tune a BERT/MiniLM sentence encoder (--model: its folder or .onnx) on pairs (.jsonl anchor/positive, query/document, instruction/output; or .tsv) or labelled texts (text/label); default: causal LM fine-tuning" };
        task.AcceptOnlyFromAmong("embed", "classify");
        var canaries = new Option<int>("--canaries") { Description = "Insert this many random canaries (\"my code is d d d d d d\") into the training data, 5 copies each, and write them to canaries.json for `edgetune audit`", DefaultValueFactory = _ => 0 };

        var command = new Command("finetune", "Fine-tune a model (LoRA or full) on your own data, on this machine");
        foreach (var o in new Option[] { model, tokenizer, data, method, rank, alpha, epochs, checkpointing, output, resume, maxMemory, prompt, qat, qatActivations, baseDtype, dpEpsilon, dpNoise, dpDelta, dpClip, dpPerExample, canaries, task })
            command.Options.Add(o);
        training.AddTo(command);
        var power = new PowerPolicyCliOptions();
        power.AddTo(command);
        var encryption = new EncryptionCliOptions(writes: true);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var outp = parse.InvocationConfiguration.Output;
            if (parse.GetValue(task) is { } encoderTask)
            {
                var decoderOnly = new Option[] { tokenizer, epochs, checkpointing, prompt, qat, qatActivations, baseDtype, dpEpsilon, dpNoise, dpPerExample, canaries };
                if (decoderOnly.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) is { } extra)
                    throw new CliException(CliErrors.Usage, $"{extra.Name} does not apply to --task {encoderTask} (encoder fine-tuning)");
                return await FinetuneEncoder.RunAsync(parse, encoderTask, model, data, method, rank, alpha, output, resume, maxMemory, training, power, encryption, new ProgressLine(err).Show, ct).ConfigureAwait(false);
            }
            string? modelRef = parse.GetValue(model);
            bool demo = modelRef is null;
            bool fullFineTuning = parse.GetValue(method) == "full" || (demo && parse.GetValue(method) is null); // the built-in model defaults to full
            var t = new TrainingOptions();
            if (demo) t = t with { Steps = DemoSteps, LearningRate = DemoLearningRate, WarmupSteps = 10, MinLrRatio = 0, SeqLen = 128, MicroBatch = 8, EvalEvery = 25, CheckpointEvery = 50 };
            t = training.Apply(parse, t) with
            {
                Epochs = parse.GetValue(epochs) ?? t.Epochs,
                ActivationCheckpointing = parse.GetValue(checkpointing) || t.ActivationCheckpointing,
            };
            int r = parse.GetValue(rank);
            EdgeTune.Tensors.Quantized.QuantFormat? baseFormat = null;
            if (parse.GetValue(baseDtype) is { } bd)
            {
                try { baseFormat = EdgeTune.Tensors.Quantized.QuantFormats.Parse(bd); }
                catch (ArgumentException e)
                {
                    throw new CliException(CliErrors.Usage, $"--base-dtype: {e.Message}");
                }
                if (fullFineTuning)
                {
                    throw new CliException(CliErrors.Usage, "--base-dtype quantizes a frozen base for LoRA (QLoRA); it cannot be combined with full fine-tuning (pass --method lora)");
                }
            }
            EdgeTune.Privacy.DpSgdOptions? dpOptions = null;
            if (parse.GetValue(dpEpsilon) is not null || parse.GetValue(dpNoise) is not null)
            {
                if (fullFineTuning)
                    throw new CliException(CliErrors.Usage, "--dp-epsilon/--dp-noise (DP-SGD) are implemented for LoRA fine-tuning only; full fine-tuning is refused (pass --method lora)");
                dpOptions = new EdgeTune.Privacy.DpSgdOptions
                {
                    TargetEpsilon = parse.GetValue(dpEpsilon), NoiseMultiplier = parse.GetValue(dpNoise),
                    Delta = parse.GetValue(dpDelta), ClipNorm = parse.GetValue(dpClip),
                    PerExample = parse.GetValue(dpPerExample) == "loop" ? EdgeTune.Privacy.DpPerExampleMode.Loop : EdgeTune.Privacy.DpPerExampleMode.Ghost,
                };
                try { dpOptions.Validate(); }
                catch (ArgumentException e)
                {
                    await err.WriteLineAsync($"finetune: {e.Message}").ConfigureAwait(false);
                    return 2;
                }
            }
            if (parse.GetValue(canaries) < 0)
            {
                await err.WriteLineAsync("finetune: --canaries must be ≥ 0").ConfigureAwait(false);
                return 2;
            }
            var (policies, accounting, profile) = power.Bind(parse);
            using var key = encryption.BindForWriting(parse, parse.GetValue(output)!, err);
            var options = new FineTuneOptions
            {
                Model = modelRef,
                Tokenizer = parse.GetValue(tokenizer),
                Data = parse.GetValue(data),
                Method = parse.GetValue(method) switch { "lora" => FineTuneMethod.Lora, "full" => FineTuneMethod.Full, _ => null },
                Lora = new LoraConfig { Rank = r, Alpha = parse.GetValue(alpha) ?? 2.0 * r, TargetModules = LoraConfig.AllProjections },
                Training = t,
                OutputDir = parse.GetValue(output)!,
                Resume = parse.GetValue(resume),
                MaxMemoryBytes = parse.GetValue(maxMemory) is { } m ? MemoryPlanner.ParseBytes(m) : null,
                SamplePrompt = parse.GetValue(prompt),
                Qat = parse.GetValue(qat) is { } qf ? EdgeTune.Tensors.Quantized.QuantFormats.Parse(qf) : null,
                QatActivations = parse.GetValue(qatActivations),
                Power = policies,
                EnergyAccounting = accounting,
                DeviceProfile = profile,
                BaseQuantization = baseFormat,
                DifferentialPrivacy = dpOptions,
                Canaries = parse.GetValue(canaries),
                Encryption = key,
            };
            var bar = new ProgressLine(err);
            var log = new Progress<FineTuneMessage>(msg => { bar.Clear(); err.WriteLine(msg.Text); });
            var progress = new SyncProgress<TrainingStatus>(bar.Show);
            var result = await FineTuneJob.RunAsync(options, progress, log, ct).ConfigureAwait(false);
            bar.Clear();
            var c = CultureInfo.InvariantCulture;
            if (result.EvalBefore is { } b0) await outp.WriteLineAsync(string.Create(c, $"validation before: loss {b0.Loss:F4} ppl {b0.Perplexity:F2}")).ConfigureAwait(false);
            if (result.EvalAfter is { } a0) await outp.WriteLineAsync(string.Create(c, $"validation after:  loss {a0.Loss:F4} ppl {a0.Perplexity:F2}")).ConfigureAwait(false);
            var tr = result.Training;
            await outp.WriteLineAsync(string.Create(c, $"stopped: {tr.Reason} at step {tr.LastStep}/{tr.TotalSteps}; trainable {result.TrainableParameters:N0} of {result.TotalParameters:N0} parameters")).ConfigureAwait(false);
            await outp.WriteLineAsync($"saved: {result.SavedTo}\nmetrics: {result.MetricsPath}").ConfigureAwait(false);
            if (result.LossPlotPath is not null) await outp.WriteLineAsync($"loss curves: {result.LossPlotPath}").ConfigureAwait(false);
            if (key is not null) await outp.WriteLineAsync($"encrypted: every file of {result.OutputDir} (AES-256-GCM; read it back with the same key option)").ConfigureAwait(false);
            if (result.MergedModelPath is not null) await outp.WriteLineAsync($"merged model: {result.MergedModelPath}").ConfigureAwait(false);
            if (result.EnergyPlotPath is not null) await outp.WriteLineAsync($"energy curves: {result.EnergyPlotPath}").ConfigureAwait(false);
            if (result.Energy is { } en) await outp.WriteLineAsync(EnergySummary(en)).ConfigureAwait(false);
            if (result.Privacy is { } dp)
                await outp.WriteLineAsync(string.Create(c, $"differential privacy: epsilon {dp.Epsilon:F3} at delta {dp.Delta:G3} spent over {dp.Steps} steps (DP-SGD, sigma {dp.NoiseMultiplier:G4}, clip {dp.ClipNorm:G4}, q {dp.SamplingRate:G4}; RDP accountant assuming Poisson sampling, batches were shuffled)")).ConfigureAwait(false);
            if (result.CanariesPath is not null) await outp.WriteLineAsync($"canaries: {result.CanariesPath}").ConfigureAwait(false);
            foreach (var sample in result.Samples)
                await outp.WriteLineAsync($"sample — {sample.Prompt}\n  before: {OneLine(sample.Before)}\n  after:  {OneLine(sample.After)}").ConfigureAwait(false);
            if (demo && result.SamplePrompt is not null && tr.Reason != TrainingStopReason.Cancelled)
                await outp.WriteLineAsync($"try: edgetune generate --model {result.MergedModelPath ?? result.SavedTo} --prompt \"{result.SamplePrompt}\" --temperature 0{(key is null ? "" : " <your key option>")}").ConfigureAwait(false);
            return tr.Reason == TrainingStopReason.NonFinite ? 1 : 0;
        });
        return command;
    }

    /// <summary>Steps of the built-in demo (no --model): well under a minute on two cores.</summary>
    /// <remarks>Measured on the 40 demo stories (batch 8 x 128, full fine-tuning, peak learning rate
    /// <see cref="DemoLearningRate"/>, cosine to 0): validation loss 2.45 -> about 1.4 and every demo prompt answered
    /// with the taught fact. Held-out loss is lowest near step 25 and rises slowly after it while the facts are
    /// memorised, which is what the demo shows.</remarks>
    public const int DemoSteps = 150;

    /// <summary>Peak learning rate of the built-in demo (full fine-tuning of stories260K).</summary>
    public const double DemoLearningRate = 1e-3;

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>The energy line printed at the end, e.g.
    /// "energy: 1234.5 J (0.3429 Wh), 0.0301 J/token, 12.40 W average, 0.137 g CO2e (estimate)".</summary>
    public static string EnergySummary(EdgeTune.Energy.EnergyReport e)
    {
        var c = CultureInfo.InvariantCulture;
        string perToken = e.JoulesPerToken is double jpt ? string.Create(c, $"{jpt:0.####} J/token") : "no tokens";
        return string.Create(c, $"energy: {e.Joules:0.0} J ({e.WattHours:0.####} Wh), {perToken}, {e.AverageWatts:0.00} W average, {e.Co2eGrams:0.###} g CO2e")
            + (e.GridIntensityIsDefault ? string.Create(c, $" at the default {e.GridIntensityGramsPerKwh:0} g/kWh") : "")
            + (e.Estimated ? " (estimate)" : $" (measured by {e.Meter})")
            + (e.ExcludedSeconds > 0 ? string.Create(c, $"; {e.ExcludedSeconds:0.#} s of pauses excluded") : "");
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <summary>A one-line live progress bar on stderr (rewritten in place on a terminal, a line per update otherwise).</summary>
    internal sealed class ProgressLine(TextWriter err)
    {
        private readonly bool _live = ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected;
        private DateTime _last;
        private int _width;

        public void Show(TrainingStatus s)
        {
            if (s.Event != TrainingEvent.Step) { Clear(); err.WriteLine(Describe(s)); return; }
            if (!_live && s.Step % 50 != 0 && s.Step != s.TotalSteps) return;
            if (_live && (DateTime.UtcNow - _last).TotalMilliseconds < 100 && s.Step != s.TotalSteps) return;
            _last = DateTime.UtcNow;
            double frac = s.TotalSteps > 0 ? (double)s.Step / s.TotalSteps : 0;
            int filled = (int)(frac * 24);
            string line = string.Create(CultureInfo.InvariantCulture,
                $"[{new string('#', filled)}{new string('-', 24 - filled)}] {s.Step}/{s.TotalSteps} loss {s.Loss:F4} lr {s.LearningRate:E2} {s.TokensPerSecond:F0} tok/s ETA {s.Eta?.ToString(@"mm\:ss") ?? "?"} mem {s.WorkingSetBytes / (1 << 20)} MB");
            if (_live) { err.Write("\r" + line.PadRight(_width)); _width = line.Length; }
            else err.WriteLine(line);
        }

        public void Clear()
        {
            if (_live && _width > 0) { err.Write("\r" + new string(' ', _width) + "\r"); _width = 0; }
        }

        private static string Describe(TrainingStatus s) => s.Event switch
        {
            TrainingEvent.Eval => string.Create(CultureInfo.InvariantCulture, $"step {s.Step}: validation loss {s.EvalLoss:F4} ppl {s.EvalPerplexity:F2}"),
            _ => $"step {s.Step}: {s.Event.ToString().ToLowerInvariant()}{(s.Message is null ? "" : ": " + s.Message)}",
        };
    }
}
