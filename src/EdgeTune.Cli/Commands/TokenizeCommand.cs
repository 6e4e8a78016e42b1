using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using EdgeTune.Text;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune tokenize</c>: the ids and vocabulary pieces a tokenizer gives each text, with the special tokens its
/// Hugging Face defaults add (BOS where tokenizer_config/the post-processor asks for it; special-token text in the
/// input becomes the special id). Texts come from repeated <c>--text</c>, or one per line from stdin.
/// Plain output: one <c>id&lt;TAB&gt;piece</c> line per token, a blank line between texts; <c>--json</c>: one line
/// <c>{"ids":[...],"tokens":[...]}</c> per text.
/// </summary>
public static class TokenizeCommand
{
    /// <param name="input">Read instead of stdin when no --text is given (tests); null: <see cref="Console.In"/>.</param>
    public static Command Create(TextReader? input = null)
    {
        var tokenizer = new Option<string>("--tokenizer")
        {
            Description = "Tokenizer file or folder (tokenizer.json, tokenizer.model, llama2.c tokenizer.bin, or a .gguf that embeds one)",
            Required = true,
        };
        var text = new Option<string[]>("--text") { Description = "Text to tokenize (repeatable); without it, each line of stdin", AllowMultipleArgumentsPerToken = false };
        var json = new Option<bool>("--json") { Description = "One JSON object per text: {\"ids\":[...],\"tokens\":[...]}" };
        var command = new Command("tokenize", "Show the token ids and pieces of a text, as the tokenizer's Hugging Face defaults encode it");
        foreach (var o in new Option[] { tokenizer, text, json }) command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var tok = TokenizerLoader.Load(parse.GetValue(tokenizer)!);
            bool asJson = parse.GetValue(json);
            bool first = true;
            foreach (string t in Texts(parse.GetValue(text), input ?? Console.In))
            {
                ct.ThrowIfCancellationRequested();
                int[] ids = Encode(tok, t);
                if (asJson)
                {
                    await output.WriteLineAsync(ToJson(tok, ids)).ConfigureAwait(false);
                    continue;
                }
                if (!first) await output.WriteLineAsync().ConfigureAwait(false);
                first = false;
                foreach (int id in ids) await output.WriteLineAsync($"{id}\t{Piece(tok, id)}").ConfigureAwait(false);
            }
            return 0;
        });
        return command;
    }

    /// <summary>The ids Hugging Face's <c>tokenizer(text)</c> gives: BOS in front when the tokenizer adds it by
    /// default, special-token text parsed as the special token.</summary>
    public static int[] Encode(ITokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(text, addBos: tokenizer.AddBosByDefault && tokenizer.BosId is not null, parseSpecial: true);
    }

    /// <summary>The vocabulary string of <paramref name="id"/>, or its bytes as text when the vocabulary has none.</summary>
    public static string Piece(ITokenizer tokenizer, int id)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.IdToToken(id) ?? Encoding.UTF8.GetString(tokenizer.TokenBytes(id, atStart: false));
    }

    private static IEnumerable<string> Texts(string[]? given, TextReader stdin)
    {
        if (given is { Length: > 0 })
        {
            foreach (string t in given) yield return t;
            yield break;
        }
        for (string? line = stdin.ReadLine(); line is not null; line = stdin.ReadLine()) yield return line;
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string ToJson(ITokenizer tokenizer, int[] ids)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteStartArray("ids");
            foreach (int id in ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            foreach (int id in ids) w.WriteStringValue(Piece(tokenizer, id));
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
