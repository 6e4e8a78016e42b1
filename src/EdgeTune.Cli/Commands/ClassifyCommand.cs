using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using EdgeTune.Models.Bert;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune classify</c>: labels texts with a classifier written by <c>edgetune finetune --task classify</c>
/// (<see cref="BertClassifier"/>). Texts come from repeated <c>--text</c> or from <c>--data</c> (.txt lines, or .jsonl /
/// .tsv rows whose label, when given, is compared with the prediction). Output: a JSON line per text,
/// <c>{"text":...,"label":...,"probabilities":{label: p, ...}}</c>, then the accuracy when the data had labels.
/// A classifier in an encrypted run folder (<c>finetune --task classify --encrypt</c>) is read with the key options.
/// </summary>
public static class ClassifyCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "The --out folder of `edgetune finetune --task classify` (encoder, classifier.safetensors, labels.json)", Required = true };
        var text = new Option<string[]>("--text") { Description = "Text to classify (repeatable)" };
        var data = new Option<string?>("--data") { Description = "Texts to classify: .txt (one per line), or .jsonl / .tsv rows (text, optional label: then the accuracy is printed)" };
        var batch = new Option<int>("--batch") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var command = new Command("classify", "Label texts with a fine-tuned encoder classifier (from finetune --task classify): label and probabilities");
        foreach (var o in new Option[] { model, text, data, batch }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var given = parse.GetValue(text) ?? [];
            string? dataPath = parse.GetValue(data);
            if (given.Length > 0 && dataPath is not null) throw new CliException(CliErrors.Usage, "give texts with --text or --data, not both");
            if (given.Length == 0 && dataPath is null) throw new CliException(CliErrors.Usage, "nothing to classify: give --text or --data");
            if (parse.GetValue(batch) <= 0) throw new CliException(CliErrors.Usage, "--batch must be positive");
            var rows = dataPath is null ? given.Select(t => (Text: t, Label: (string?)null)).ToList() : EncoderData.ReadTexts(dataPath);
            using var key = encryption.BindForReading(parse, parse.InvocationConfiguration.Error);
            using var classifier = BertClassifier.Load(parse.GetValue(model)!, key);
            var predictions = await Task.Run(() => classifier.Predict(rows.Select(r => r.Text).ToList(), parse.GetValue(batch)), ct).ConfigureAwait(false);
            var outp = parse.InvocationConfiguration.Output;
            int labelled = 0, right = 0;
            for (int i = 0; i < rows.Count; i++)
            {
                await outp.WriteLineAsync(Json(predictions[i])).ConfigureAwait(false);
                if (rows[i].Label is { } expected)
                {
                    labelled++;
                    if (expected == predictions[i].Label) right++;
                }
            }
            if (labelled > 0)
                await outp.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"accuracy: {(double)right / labelled:F4} ({right}/{labelled} labelled texts)")).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Json(ClassPrediction p)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("text", p.Text);
            w.WriteString("label", p.Label);
            w.WriteStartObject("probabilities");
            foreach (var (label, prob) in p.Probabilities) w.WriteNumber(label, prob);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
