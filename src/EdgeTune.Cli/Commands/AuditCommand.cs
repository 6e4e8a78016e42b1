using System.CommandLine;
using System.Globalization;
using EdgeTune.Models;
using EdgeTune.Privacy;
using EdgeTune.Training;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune audit</c>: binds flags to <see cref="MemorizationAudit.Run"/>: canary exposure (the run's
/// canaries.json, found beside --adapter when --canaries is not given) and the loss-based membership-inference AUC of
/// --data (training rows) against --heldout.</summary>
public static class AuditCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var adapter = ModelOptions.Adapter();
        var data = new Option<string?>("--data") { Description = "Training rows (the file the model was fine-tuned on) for the membership-inference AUC; needs --heldout" };
        var heldout = new Option<string?>("--heldout") { Description = "Held-out rows of the same kind, never trained on" };
        var canaries = new Option<string?>("--canaries") { Description = "canaries.json written by finetune --canaries (default: the one in the --adapter run folder, if any)" };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per row (use the training run's)", DefaultValueFactory = _ => 128 };
        var maxRows = new Option<int>("--max-rows") { Description = "Rows scored from each of --data and --heldout (the first ones)", DefaultValueFactory = _ => 200 };
        var candidates = new Option<int>("--candidates") { Description = "Candidate secrets scored per canary: all of them when the space is that small, else a uniform sample of this size (rank estimated)", DefaultValueFactory = _ => 2000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the candidate sample", DefaultValueFactory = _ => 1 };
        var json = new Option<string?>("--json") { Description = "Also write the full report (every canary) to this JSON file" };

        var command = new Command("audit", "Memorization audit: canary exposure and membership-inference AUC of a (fine-tuned) model");
        foreach (var o in new Option[] { model, tokenizer, adapter, data, heldout, canaries, seqLen, maxRows, candidates, seed, json }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            string? trainPath = parse.GetValue(data), heldPath = parse.GetValue(heldout);
            if (trainPath is null != heldPath is null)
            {
                await stderr.WriteLineAsync("audit: --data and --heldout go together (the membership AUC compares training rows with held-out rows)").ConfigureAwait(false);
                return 2;
            }
            foreach (string? p in new[] { trainPath, heldPath })
                if (p is not null && !File.Exists(p))
                {
                    await stderr.WriteLineAsync($"audit: data file '{p}' does not exist").ConfigureAwait(false);
                    return 2;
                }
            string? canaryPath = parse.GetValue(canaries) ?? FindCanaries(parse.GetValue(adapter));
            if (canaryPath is not null && !File.Exists(canaryPath))
            {
                await stderr.WriteLineAsync($"audit: canaries file '{canaryPath}' does not exist").ConfigureAwait(false);
                return 2;
            }
            if (canaryPath is null && trainPath is null)
            {
                await stderr.WriteLineAsync("audit: nothing to measure: give --data and --heldout, or --canaries (or an --adapter run folder with canaries.json)").ConfigureAwait(false);
                return 2;
            }
            var options = new AuditOptions { SeqLen = parse.GetValue(seqLen), MaxRows = parse.GetValue(maxRows), Candidates = parse.GetValue(candidates), Seed = parse.GetValue(seed) };
            try { options.Validate(); }
            catch (ArgumentOutOfRangeException e)
            {
                await stderr.WriteLineAsync("audit: " + e.Message).ConfigureAwait(false);
                return 2;
            }
            using var key = encryption.BindForReading(parse, stderr);
            if (parse.GetValue(json) is { } reportPath) EncryptionCliOptions.RefusePlainOutput(reportPath, "--json");
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, stderr, ct, key: key).ConfigureAwait(false);
            using var lora = ModelOptions.ApplyAdapter(parse, adapter, loaded, stderr, key);
            if (loaded.Model is not DecoderModel decoder)
            {
                await stderr.WriteLineAsync($"audit: {loaded.Source} is a {loaded.Config.ModelType} model; the audit needs a decoder model").ConfigureAwait(false);
                return 2;
            }
            var set = canaryPath is null ? null : CanarySet.FromJson(EdgeTune.Security.RunFiles.ForReading(canaryPath, key).ReadAllText(canaryPath));
            if (set is not null) await stderr.WriteLineAsync($"canaries: {set.Secrets.Count} from {canaryPath}").ConfigureAwait(false);
            var scorer = new DelegateTrainableModel(decoder.Parameters, (tape, tok, tgt, b, t) => decoder.Loss(tape, tok, tgt, b, t));
            var log = new Progress<string>(line => stderr.WriteLine(line));
            var report = await Task.Run(() => MemorizationAudit.Run(scorer, loaded.RequireTokenizer(), loaded.ChatTemplate, trainPath, heldPath, set, options, log), ct)
                .ConfigureAwait(false);
            var c = CultureInfo.InvariantCulture;
            if (report.MeanExposure is double mean)
            {
                int saturated = report.Canaries.Count(r => r.Saturated);
                await stdout.WriteLineAsync(string.Create(c, $"canary exposure: mean {mean:F2} bits of {report.SpaceBits:F2} (min {report.Canaries.Min(r => r.Exposure):F2}, max {report.Canaries.Max(r => r.Exposure):F2}) over {report.Canaries.Count} canaries")
                    + (report.Canaries.All(r => r.Enumerated) ? ", exact ranks" : string.Create(c, $", ranks estimated from {options.Candidates} sampled candidates each ({saturated} saturated: above about {Math.Log2(options.Candidates):F1} bits the sample cannot resolve)"))).ConfigureAwait(false);
            }
            if (report.Membership is { } m)
                await stdout.WriteLineAsync(string.Create(c, $"membership inference (loss threshold): AUC {m.Auc:F4} over {m.TrainRows} training and {m.HeldoutRows} held-out rows; loss {m.TrainLoss:F4} (ppl {m.TrainPerplexity:F2}) vs {m.HeldoutLoss:F4} (ppl {m.HeldoutPerplexity:F2})")).ConfigureAwait(false);
            if (parse.GetValue(json) is { } jsonPath)
            {
                await File.WriteAllTextAsync(jsonPath, report.ToJson(), ct).ConfigureAwait(false);
                await stdout.WriteLineAsync($"report: {jsonPath}").ConfigureAwait(false);
            }
            return 0;
        });
        return command;
    }

    /// <summary>canaries.json in the adapter folder or its parent (the run folder of finetune --canaries).</summary>
    private static string? FindCanaries(string? adapterPath)
    {
        if (adapterPath is null) return null;
        var dir = new DirectoryInfo(Path.GetFullPath(adapterPath));
        foreach (var d in new[] { dir, dir.Parent })
            if (d is not null && File.Exists(Path.Combine(d.FullName, CanarySet.FileName))) return Path.Combine(d.FullName, CanarySet.FileName);
        return null;
    }
}
