using EdgeTune.Text.Datasets;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTune.Models;
using EdgeTune.Text;
using EdgeTune.Training.Evaluation;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune eval</c>: mean next-token loss and perplexity of a model on a data file. Prints
/// <c>loss X ppl Y tokens N</c> (or one JSON object with <c>--json</c>) on stdout; progress on stderr.
/// Data sources are picked by <see cref="LoadWindows"/> from the file's extension (plain text now;
/// JSONL slots in there), and an adapter is applied to the loaded model before evaluation.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var adapter = ModelOptions.Adapter();
        var data = new Option<string>("--data") { Description = "Evaluation data: plain text (.txt) or JSONL (text, instruction or chat; loss on responses only)", Required = true };
        var seqLen = new Option<int?>("--seq-len") { Description = "Window length in tokens (default: min(256, the model's positions))" };
        var maxTokens = new Option<long?>("--max-tokens") { Description = "Evaluate at most this many tokens from the start of the data" };
        var batch = new Option<int>("--batch") { Description = "Windows per forward pass", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text" };

        var command = new Command("eval", "Mean loss and perplexity of a model on a data file");
        foreach (var o in new Option[] { model, tokenizer, adapter, data, seqLen, maxTokens, batch, json }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            string dataPath = parse.GetValue(data)!;
            if (!File.Exists(dataPath))
            {
                throw new CliException(CliErrors.Input, $"data file '{dataPath}' does not exist");
            }
            if (parse.GetValue(seqLen) is int l && l < 1 || parse.GetValue(maxTokens) is long m && m < 2 || parse.GetValue(batch) < 1)
            {
                throw new CliException(CliErrors.Usage, "--seq-len and --batch must be at least 1, --max-tokens at least 2");
            }
            ModelOptions.ResolveAdapter(parse, adapter);
            var sw = Stopwatch.StartNew();
            using var key = encryption.BindForReading(parse, stderr);
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, stderr, ct, key: key).ConfigureAwait(false);
            ModelOptions.ApplyAdapter(parse, adapter, loaded, stderr, key);
            if (loaded.Model is not DecoderModel llama)
            {
                throw new CliException(CliErrors.Model, $"{loaded.Source} is a {loaded.Config.ModelType} model; evaluation needs a decoder model");
            }
            var tok = loaded.RequireTokenizer();
            int len = parse.GetValue(seqLen) ?? Math.Min(256, llama.MaxPositions);
            if (len > llama.MaxPositions)
            {
                throw new CliException(CliErrors.Usage, $"--seq-len {len} exceeds the model's {llama.MaxPositions} positions");
            }
            var windows = LoadWindows(dataPath, tok, len, parse.GetValue(maxTokens), loaded.ChatTemplate);
            if (windows.Count == 0)
            {
                throw new CliException(CliErrors.Input, $"'{dataPath}' holds fewer than 2 tokens; nothing to evaluate");
            }
            await stderr.WriteLineAsync($"loaded {loaded.Source} in {sw.Elapsed.TotalSeconds:F2} s; {windows.Count} windows of {len} tokens").ConfigureAwait(false);
            sw.Restart();
            var result = LossEvaluator.Evaluate(llama, windows, parse.GetValue(batch), cancellationToken: ct);
            double secs = sw.Elapsed.TotalSeconds;
            await stderr.WriteLineAsync($"evaluated {result.Tokens} tokens in {secs:F2} s ({result.Tokens / Math.Max(secs, 1e-9):F0} tokens/s)").ConfigureAwait(false);
            await stdout.WriteLineAsync(parse.GetValue(json)
                ? ToJson(result, loaded.Source, dataPath, len, secs)
                : string.Create(CultureInfo.InvariantCulture, $"loss {result.Loss:F4} ppl {result.Perplexity:F3} tokens {result.Tokens}")).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Evaluation windows of <paramref name="seqLen"/> from a data file. Plain text: the whole file is
    /// tokenized (BOS in front when the tokenizer wants one) and cut by <see cref="TextWindows"/>.
    /// </summary>
    /// <param name="maxTokens">Keep at most this many ids (scored: one fewer).</param>
    public static IReadOnlyList<EvalWindow> LoadWindows(string path, ITokenizer tokenizer, int seqLen, long? maxTokens, ChatTemplate? template = null)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".jsonl" or ".json")
        {
            // JSONL (text, instruction or chat): the same rendering and masks as training, loss on responses only.
            var ds = TrainingDataset.Load(path, tokenizer, template, new DatasetOptions { SeqLen = seqLen, ValidationFraction = 0, Pack = false });
            var windows = ds.Train.Select(q => new EvalWindow(q.Tokens, q.Targets)).ToList();
            return maxTokens is long mt ? windows.Take((int)Math.Max(1, Math.Min(int.MaxValue, mt / seqLen))).ToList() : windows;
        }
        string text = File.ReadAllText(path, Encoding.UTF8);
        if (maxTokens is long cap && text.Length > cap * 16) text = text[..(int)Math.Min(int.MaxValue, cap * 16)]; // a token is rarely longer than 16 chars
        int[] ids = tokenizer.Encode(text, addBos: tokenizer.AddBosByDefault && tokenizer.BosId is not null, parseSpecial: false);
        if (maxTokens is long m && ids.Length > m) ids = ids[..(int)m];
        return TextWindows.Create(ids, seqLen, tokenizer.PadId ?? tokenizer.EosId ?? 0);
    }

    private static string ToJson(EvalResult r, string model, string data, int seqLen, double seconds) =>
        JsonSerializer.Serialize(new EvalCommandJson(r.Loss, r.Perplexity, r.Tokens, r.Windows, seqLen, model, data, seconds), CliJson.Default.EvalCommandJson);
}

/// <summary>What <c>edgetune eval --json</c> prints.</summary>
internal sealed record EvalCommandJson(double Loss, double Ppl, long Tokens, int Windows, int SeqLen, string Model, string Data, double Seconds);
