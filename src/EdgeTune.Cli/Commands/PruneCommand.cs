using System.CommandLine;
using System.Globalization;
using System.Text;
using EdgeTune.Compression.Pruning;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Training;
using EdgeTune.Training.FineTuning;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune prune</c>: prunes a decoder model (magnitude, 2:4, Wanda, Wanda 2:4 or structured heads/MLP
/// channels), optionally recovers it by full fine-tuning with the pruning mask held fixed, and saves a model folder
/// (config.json + model.safetensors + the tokenizer) that <c>generate</c> and <c>eval</c> read. Prints the sparsity of
/// every layer and the totals on stdout.
/// </summary>
public static class PruneCommand
{
    public static readonly IReadOnlyList<string> Methods = ["magnitude", "2:4", "wanda", "wanda-2:4", "structured"];

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var method = new Option<string>("--method") { Description = "magnitude, 2:4, wanda, wanda-2:4 or structured", DefaultValueFactory = _ => "magnitude" };
        var sparsity = new Option<double>("--sparsity") { Description = "Share of decoder projection weights to remove (magnitude, wanda)", DefaultValueFactory = _ => 0.5 };
        var scope = new Option<string?>("--scope") { Description = "tensor, row or global: which weights compete (default: tensor for magnitude, row for wanda)" };
        var heads = new Option<double>("--heads") { Description = "structured: share of attention heads to remove (whole KV groups)", DefaultValueFactory = _ => 0.25 };
        var mlp = new Option<double>("--mlp") { Description = "structured: share of MLP intermediate channels to remove", DefaultValueFactory = _ => 0.25 };
        var calibration = new Option<string?>("--calibration") { Description = "Calibration text (.txt) for Wanda (required) and structured (optional, activation-based scores)" };
        var calTokens = new Option<int>("--calibration-tokens") { Description = "Calibration tokens taken from the start of --calibration", DefaultValueFactory = _ => 8192 };
        var recover = new Option<int>("--recover-steps") { Description = "Recovery fine-tuning steps with the mask fixed (0: none)", DefaultValueFactory = _ => 0 };
        var data = new Option<string?>("--data") { Description = "Recovery training data (.txt or JSONL; its last 10% is held out for validation)" };
        var lr = new Option<double>("--lr") { Description = "Recovery peak learning rate", DefaultValueFactory = _ => 5e-4 };
        var batch = new Option<int>("--batch") { Description = "Recovery sequences per step", DefaultValueFactory = _ => 8 };
        var seqLen = new Option<int?>("--seq-len") { Description = "Recovery and calibration window length (default: min(256, the model's positions))" };
        var seed = new Option<ulong>("--seed") { Description = "Recovery seed", DefaultValueFactory = _ => 1234 };
        var output = new Option<string>("--out") { Description = "Folder for the pruned model", Required = true };

        var command = new Command("prune", "Prune a model (unstructured, 2:4, Wanda or structured), optionally recover it by fine-tuning, and save it");
        foreach (var o in new Option[] { model, tokenizer, method, sparsity, scope, heads, mlp, calibration, calTokens, recover, data, lr, batch, seqLen, seed, output })
            command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            var c = CultureInfo.InvariantCulture;
            string m = parse.GetValue(method)!;
            string? calPath = parse.GetValue(calibration), dataPath = parse.GetValue(data), scopeText = parse.GetValue(scope);
            int steps = parse.GetValue(recover);
            string? error =
                !Methods.Contains(m) ? $"--method '{m}' is not one of {string.Join(", ", Methods)}"
                : parse.GetValue(sparsity) is var s && !(s >= 0 && s < 1) ? $"--sparsity {s.ToString(c)} is outside [0, 1)"
                : parse.GetValue(heads) is var h && !(h >= 0 && h < 1) ? $"--heads {h.ToString(c)} is outside [0, 1)"
                : parse.GetValue(mlp) is var f && !(f >= 0 && f < 1) ? $"--mlp {f.ToString(c)} is outside [0, 1)"
                : scopeText is not null and not ("tensor" or "row" or "global") ? $"--scope '{scopeText}' is not tensor, row or global"
                : m.StartsWith("wanda", StringComparison.Ordinal) && scopeText == "global" ? "--scope global does not apply to wanda (scores are not comparable across layers)"
                : m.StartsWith("wanda", StringComparison.Ordinal) && calPath is null ? $"--method {m} needs --calibration text"
                : parse.GetValue(calTokens) < 1 ? "--calibration-tokens must be at least 1"
                : steps < 0 ? "--recover-steps must not be negative"
                : steps > 0 && dataPath is null ? "--recover-steps needs --data"
                : parse.GetValue(batch) < 1 || parse.GetValue(seqLen) is < 1 ? "--batch and --seq-len must be at least 1"
                : !(parse.GetValue(lr) > 0) ? "--lr must be positive"
                : null;
            if (error is not null) throw new CliException(CliErrors.Usage, error);
            if (calPath is not null && !File.Exists(calPath)) throw new FileNotFoundException($"calibration file '{calPath}' does not exist", calPath);
            if (dataPath is not null && !File.Exists(dataPath)) throw new FileNotFoundException($"data file '{dataPath}' does not exist", dataPath);
            string outDir = parse.GetValue(output)!;
            string reference = parse.GetValue(model)!;
            string? tokArg = parse.GetValue(tokenizer);
            EncryptionCliOptions.RefusePlainOutput(outDir, "--out");
            using var key = encryption.BindForReading(parse, parse.InvocationConfiguration.Error);

            var loaded = ModelLoader.Load(reference, tokArg, ModelLoadOptions.FullFineTuning, key);
            DecoderModel? pruned = null;
            using (loaded)
            {
                if (loaded.Model is not DecoderModel llama)
                {
                    throw new CliException(CliErrors.Model, $"{loaded.Source} is a {loaded.Config.ModelType} model; pruning needs a decoder model");
                }
                foreach (var p in llama.Parameters) p.Trainable = false; // F32 writable copies, no gradients needed here
                if ((calPath is not null || steps > 0) && loaded.Tokenizer is null)
                {
                    throw new CliException(CliErrors.Input, $"no tokenizer found for '{reference}': pass --tokenizer (needed for --calibration and --recover-steps)");
                }
                int window = parse.GetValue(seqLen) ?? Math.Min(256, llama.MaxPositions);
                if (window > llama.MaxPositions)
                {
                    throw new CliException(CliErrors.Usage, $"--seq-len {window} exceeds the model's {llama.MaxPositions} positions");
                }
                ActivationNorms? norms = null;
                if (calPath is not null)
                {
                    var tok = loaded.Tokenizer!;
                    int cap = parse.GetValue(calTokens);
                    string text = File.ReadAllText(calPath, Encoding.UTF8);
                    if (text.Length > (long)cap * 16) text = text[..(cap * 16)];
                    int[] ids = tok.Encode(text, addBos: tok.AddBosByDefault && tok.BosId is not null, parseSpecial: false);
                    if (ids.Length > cap) ids = ids[..cap];
                    if (ids.Length == 0)
                    {
                        throw new CliException(CliErrors.Input, $"calibration file '{calPath}' holds no tokens");
                    }
                    norms = ActivationNorms.Collect(llama, ids, window, ct);
                    await stderr.WriteLineAsync($"calibration: {ids.Length} tokens from {calPath}").ConfigureAwait(false);
                }

                long paramsBefore = llama.Parameters.ElementCount;
                if (m == "structured")
                {
                    var r = StructuredPruner.Prune(llama, new StructuredPruningOptions { HeadFraction = parse.GetValue(heads), MlpFraction = parse.GetValue(mlp) }, norms);
                    pruned = r.Model;
                    var a = llama.Config;
                    var b = pruned.Config;
                    await stdout.WriteLineAsync($"structured: heads {a.NumAttentionHeads} -> {b.NumAttentionHeads} (kv {a.NumKeyValueHeads} -> {b.NumKeyValueHeads}, head_dim {b.HeadDim}), intermediate {a.IntermediateSize} -> {b.IntermediateSize} in each of {b.NumHiddenLayers} layers; scores from {(norms is null ? "weight norms" : "calibration activations")}").ConfigureAwait(false);
                    for (int l = 0; l < r.KeptKvHeads.Count; l++)
                        await stdout.WriteLineAsync($"layer {l,2}: kept kv groups [{string.Join(",", r.KeptKvHeads[l])}], removed {a.IntermediateSize - r.KeptChannels[l].Length} MLP channels").ConfigureAwait(false);
                }
                else
                {
                    var options = new PruningOptions
                    {
                        Score = m.StartsWith("wanda", StringComparison.Ordinal) ? PruningScore.Wanda : PruningScore.Magnitude,
                        Sparsity = parse.GetValue(sparsity),
                        Scope = scopeText switch { "tensor" => PruningScope.PerTensor, "row" => PruningScope.PerRow, "global" => PruningScope.Global, _ => null },
                        N = m.EndsWith("2:4", StringComparison.Ordinal) ? 2 : 0,
                        M = m.EndsWith("2:4", StringComparison.Ordinal) ? 4 : 0,
                    };
                    WeightPruner.Prune(llama, options, norms);
                }
                var target = pruned ?? llama;
                await stdout.WriteLineAsync(SparsityReport(target, paramsBefore, perLayer: pruned is null)).ConfigureAwait(false);
                string? tokenizerFolder = tokArg is not null ? (Directory.Exists(tokArg) ? tokArg : null) : (Directory.Exists(loaded.Source) ? loaded.Source : null);
                try
                {
                    ModelExporter.ExportSafetensors(target, outDir, DType.F32, tokenizerFolder, loaded.Tokenizer);
                    CarryTokenizer(tokArg ?? (Directory.Exists(loaded.Source) ? loaded.Source : null), outDir);
                }
                finally
                {
                    pruned?.Dispose();
                }
            }

            if (steps > 0)
            {
                int len = parse.GetValue(seqLen) ?? 256;
                string runDir = Path.Combine(outDir, "recovery");
                var hooks = m == "structured" ? default : PruningMask.FixZeros();
                var options = new FineTuneOptions
                {
                    Model = outDir,
                    Tokenizer = tokArg,
                    Data = dataPath!,
                    Method = FineTuneMethod.Full,
                    Training = new TrainingOptions
                    {
                        Steps = steps, LearningRate = parse.GetValue(lr), WarmupSteps = Math.Min(10, steps / 10), SeqLen = len, MicroBatch = parse.GetValue(batch),
                        EvalEvery = Math.Max(1, steps), CheckpointEvery = Math.Max(1, steps), KeepCheckpoints = 1, Seed = parse.GetValue(seed),
                    },
                    OutputDir = runDir,
                    AfterBackward = hooks.AfterBackward,
                    AfterStep = hooks.AfterStep,
                };
                var log = new Progress<FineTuneMessage>(msg => stderr.WriteLine(msg.Text));
                var result = await FineTuneJob.RunAsync(options, null, log, ct).ConfigureAwait(false);
                if (result.EvalBefore is { } b0) await stdout.WriteLineAsync(string.Create(c, $"recovery validation before: loss {b0.Loss:F4} ppl {b0.Perplexity:F2}")).ConfigureAwait(false);
                if (result.EvalAfter is { } a0) await stdout.WriteLineAsync(string.Create(c, $"recovery validation after:  loss {a0.Loss:F4} ppl {a0.Perplexity:F2}")).ConfigureAwait(false);
                if (result.Training.Reason != TrainingStopReason.Completed)
                {
                    await stderr.WriteLineAsync($"prune: recovery stopped early ({result.Training.Reason}); the saved model is the pruned one before recovery").ConfigureAwait(false);
                    return 1;
                }
                foreach (string file in new[] { "model.safetensors", "config.json" })
                    File.Copy(Path.Combine(result.SavedTo, file), Path.Combine(outDir, file), overwrite: true);
                Directory.Delete(result.SavedTo, recursive: true);
                string ckpt = Path.Combine(runDir, "checkpoints");
                if (Directory.Exists(ckpt)) Directory.Delete(ckpt, recursive: true);
                using var check = ModelLoader.Load(outDir, tokArg);
                var (_, total) = PrunableWeights.Measure((DecoderModel)check.Model);
                await stdout.WriteLineAsync(string.Create(c, $"after recovery: decoder projections {total.Sparsity:P2} zero; metrics and loss curve in {runDir}")).ConfigureAwait(false);
            }
            await stdout.WriteLineAsync($"saved: {outDir}").ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>One line per layer with each projection's sparsity (when <paramref name="perLayer"/>), then the totals.</summary>
    public static string SparsityReport(DecoderModel model, long parametersBefore, bool perLayer = true)
    {
        var c = CultureInfo.InvariantCulture;
        var (rows, total) = PrunableWeights.Measure(model);
        var sb = new StringBuilder();
        for (int l = 0; perLayer && l < model.Layers.Count; l++)
        {
            string prefix = $"model.layers.{l}.";
            var mine = rows.Where(r => r.Name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            long e = mine.Sum(r => r.Elements), z = mine.Sum(r => r.Pruned);
            sb.Append(c, $"layer {l,2}:");
            foreach (var r in mine)
            {
                string shortName = r.Name[prefix.Length..].Split('.')[1].Replace("_proj", "", StringComparison.Ordinal);
                sb.Append(c, $" {shortName} {r.Sparsity * 100:F1}%");
            }
            sb.Append(c, $" | {(e == 0 ? 0 : 100.0 * z / e):F1}%\n");
        }
        long all = model.Parameters.ElementCount;
        sb.Append(c, $"decoder projections: {total.Pruned:N0} of {total.Elements:N0} weights zero ({total.Sparsity * 100:F2}%)\n");
        sb.Append(c, $"parameters: {all:N0} (before {parametersBefore:N0}), non-zero {all - total.Pruned:N0}");
        return sb.ToString();
    }

    /// <summary>Copies tokenizer files the exporter does not know (llama2.c tok*.bin / tokenizer.bin, the byte-tokenizer marker).</summary>
    private static void CarryTokenizer(string? source, string outDir)
    {
        if (source is null) return;
        if (File.Exists(source))
        {
            string ext = Path.GetExtension(source).ToLowerInvariant();
            string name = ext switch { ".bin" => "tokenizer.bin", ".model" => "tokenizer.model", ".json" => "tokenizer.json", _ => Path.GetFileName(source) };
            File.Copy(source, Path.Combine(outDir, name), overwrite: true);
            return;
        }
        if (!Directory.Exists(source)) return;
        foreach (string file in Directory.EnumerateFiles(source))
        {
            string name = Path.GetFileName(file);
            bool isTokenizer = name == ByteTokenizer.MarkerFile || name == "tokenizer.bin" || name == "tokenizer.model.v3" || name is "vocab.json" or "merges.txt"
                || (name.StartsWith("tok", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal))
                || ModelExporter.TokenizerFiles.Contains(name);
            if (isTokenizer && !File.Exists(Path.Combine(outDir, name))) File.Copy(file, Path.Combine(outDir, name));
        }
    }
}
