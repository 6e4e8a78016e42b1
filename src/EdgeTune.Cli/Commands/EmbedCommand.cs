using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using EdgeTune.Models.Bert;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune embed</c>: sentence embeddings from a BERT encoder (<see cref="BertFolder.Load(string)"/>: a sentence-transformers
/// folder, a folder with model.onnx + vocab.txt, or the .onnx file), through <see cref="BertEmbeddingGenerator"/>. Texts
/// come from repeated <c>--text</c>, or one per line from <c>--file</c> or stdin. Output: one JSON line per text,
/// <c>{"text":...,"embedding":[...]}</c> (<c>--format tsv</c>: the numbers tab-separated), to stdout or <c>--out</c>.
/// An encoder in an encrypted run folder (<c>finetune --task embed --encrypt</c>) is read with the key options.
/// </summary>
public static class EmbedCommand
{
    /// <param name="input">Read instead of stdin when neither --text nor --file is given (tests); null: <see cref="Console.In"/>.</param>
    public static Command Create(TextReader? input = null)
    {
        var model = new Option<string>("--model") { Description = "Encoder: sentence-transformers folder (config.json + model.safetensors + vocab.txt), a folder with model.onnx + vocab.txt, or the .onnx file", Required = true };
        var text = new Option<string[]>("--text") { Description = "Text to embed (repeatable); without it, --file or each line of stdin" };
        var file = new Option<string?>("--file") { Description = "Text file: one text per line (blank lines skipped)" };
        var output = new Option<string?>("--out") { Description = "Write the output here instead of stdout" };
        var format = new Option<string>("--format") { Description = "json (a {\"text\",\"embedding\"} object per line) or tsv (the numbers of each embedding, tab-separated)", DefaultValueFactory = _ => "json" };
        format.AcceptOnlyFromAmong("json", "tsv");
        var batch = new Option<int>("--batch") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens kept per text ([CLS] and [SEP] included); default 256 or the model's positions if fewer" };
        var command = new Command("embed", "Embed texts with a local sentence encoder (MiniLM, BERT, DistilBERT, arctic-embed): pooled as the model configures (mean or [CLS]) and normalised");
        foreach (var o in new Option[] { model, text, file, output, format, batch, maxLength }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(text) is { Length: > 0 } && parse.GetValue(file) is not null)
                throw new CliException(CliErrors.Usage, "give texts with --text or --file, not both");
            if (parse.GetValue(batch) <= 0) throw new CliException(CliErrors.Usage, "--batch must be positive");
            var texts = Texts(parse.GetValue(text), parse.GetValue(file), input ?? Console.In);
            if (texts.Count == 0) throw new CliException(CliErrors.Input, "no text to embed (give --text, --file or lines on stdin)");
            string? outPath = parse.GetValue(output);
            if (outPath is not null) EncryptionCliOptions.RefusePlainOutput(outPath, "--out");
            using var key = encryption.BindForReading(parse, parse.InvocationConfiguration.Error);
            var (encoder, tokenizer) = BertFolder.Load(parse.GetValue(model)!, key);
            using (encoder)
            {
                int max = parse.GetValue(maxLength) ?? Math.Min(256, encoder.Config.MaxPositions);
                if (max < 2 || max > encoder.Config.MaxPositions)
                    throw new CliException(CliErrors.Usage, $"--max-length must lie in 2..{encoder.Config.MaxPositions} (the model's positions)");
                using var generator = new BertEmbeddingGenerator(encoder, tokenizer, Path.GetFileName(Path.TrimEndingDirectorySeparator(parse.GetValue(model)!)), parse.GetValue(batch), max);
                var embeddings = await generator.GenerateAsync(texts, cancellationToken: ct).ConfigureAwait(false);
                var writer = outPath is null ? parse.InvocationConfiguration.Output : new StreamWriter(outPath, false, new UTF8Encoding(false));
                try
                {
                    bool tsv = parse.GetValue(format) == "tsv";
                    for (int i = 0; i < texts.Count; i++)
                        await writer.WriteLineAsync(tsv ? Tsv(embeddings[i].Vector.Span) : Json(texts[i], embeddings[i].Vector.Span)).ConfigureAwait(false);
                }
                finally
                {
                    if (outPath is not null) await writer.DisposeAsync().ConfigureAwait(false);
                }
                if (outPath is not null)
                    await parse.InvocationConfiguration.Output.WriteLineAsync($"{texts.Count} embeddings of {encoder.Config.HiddenSize} dimensions written to {outPath}").ConfigureAwait(false);
            }
            return 0;
        });
        return command;
    }

    private static List<string> Texts(string[]? given, string? file, TextReader stdin)
    {
        if (given is { Length: > 0 }) return [.. given];
        if (file is not null)
        {
            if (!File.Exists(file)) throw new CliException(CliErrors.Input, $"--file '{file}' not found");
            return File.ReadLines(file).Where(l => l.Trim().Length > 0).ToList();
        }
        var list = new List<string>();
        for (string? line = stdin.ReadLine(); line is not null; line = stdin.ReadLine())
            if (line.Trim().Length > 0) list.Add(line);
        return list;
    }

    private static string Tsv(ReadOnlySpan<float> v)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < v.Length; i++)
        {
            if (i > 0) sb.Append('\t');
            sb.Append(v[i].ToString("R", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Json(string text, ReadOnlySpan<float> v)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteStartArray("embedding");
            foreach (float x in v) w.WriteNumberValue(x);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
