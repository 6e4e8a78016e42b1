using System.Text.Json;

namespace EdgeTune.Text;

/// <summary>
/// The parts of Hugging Face <c>tokenizer_config.json</c> that EdgeTune uses: special token strings, whether
/// BOS/EOS are added, added_tokens_decoder, the chat template(s) and the tokenizer class.
/// </summary>
public sealed record TokenizerConfig
{
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? PadToken { get; init; }
    public string? UnkToken { get; init; }
    public bool? AddBosToken { get; init; }
    public bool? AddEosToken { get; init; }
    public string? TokenizerClass { get; init; }
    /// <summary>The default chat template (chat_template.jinja beside the file, else chat_template as a string, or
    /// its entry named "default").</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>All named chat templates (a string chat_template is stored as "default").</summary>
    public IReadOnlyDictionary<string, string> ChatTemplates { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>The file beside tokenizer_config.json that holds the default chat template in newer saves.</summary>
    public const string ChatTemplateFile = "chat_template.jinja";

    public static TokenizerConfig Load(string path)
    {
        using var doc = ReadJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object at the top level");
        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in dec.EnumerateObject())
            {
                if (!int.TryParse(p.Name, out int id))
                    throw new InvalidDataException($"{path}: added_tokens_decoder key '{p.Name}' is not an integer id");
                added.Add(ReadAddedToken(p.Value, id, path, $"added_tokens_decoder.{p.Name}"));
            }
        }
        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        string? template = null;
        if (root.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String) templates["default"] = template = ct.GetString()!;
            else if (ct.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in ct.EnumerateArray())
                {
                    string name = e.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
                    string text = e.TryGetProperty("template", out var t) ? t.GetString() ?? ""
                        : throw new InvalidDataException($"{path}: chat_template entry '{name}' has no 'template' field");
                    templates[name] = text;
                }
                templates.TryGetValue("default", out template);
            }
            else if (ct.ValueKind != JsonValueKind.Null)
                throw new InvalidDataException($"{path}: chat_template must be a string or a list of {{name, template}}, got {ct.ValueKind}");
        }
        // Newer transformers save the template as chat_template.jinja beside tokenizer_config.json (Gemma 3); when
        // that file exists it replaces the config's template, as transformers' from_pretrained does.
        string jinja = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, ChatTemplateFile);
        if (File.Exists(jinja)) templates["default"] = template = File.ReadAllText(jinja);
        return new TokenizerConfig
        {
            BosToken = TokenString(root, "bos_token", path),
            EosToken = TokenString(root, "eos_token", path),
            PadToken = TokenString(root, "pad_token", path),
            UnkToken = TokenString(root, "unk_token", path),
            AddBosToken = Bool(root, "add_bos_token", path),
            AddEosToken = Bool(root, "add_eos_token", path),
            TokenizerClass = root.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null,
            ChatTemplate = template,
            ChatTemplates = templates,
            AddedTokens = added,
        };
    }

    internal static JsonDocument ReadJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            using var s = File.OpenRead(path);
            return JsonDocument.Parse(s, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON ({e.Message})", e);
        }
    }

    internal static AddedToken ReadAddedToken(JsonElement e, int id, string path, string field)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{path}: {field} must be an object with a string 'content'");
        return new AddedToken(c.GetString()!, id,
            Special: Flag(e, "special", true), LStrip: Flag(e, "lstrip", false), RStrip: Flag(e, "rstrip", false));
    }

    private static bool Flag(JsonElement e, string name, bool dflt) =>
        e.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False) ? v.GetBoolean() : dflt;

    private static string? TokenString(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new InvalidDataException($"{path}: {name} must be a string, null or an object with 'content', got {v.ValueKind}"),
        };
    }

    private static bool? Bool(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return v.GetBoolean();
        throw new InvalidDataException($"{path}: {name} must be true/false, got {v.ValueKind}");
    }
}
