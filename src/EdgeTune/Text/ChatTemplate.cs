using EdgeTune.Text.Internal.Jinja;

namespace EdgeTune.Text;

/// <summary>
/// A model's chat template (Jinja, as in tokenizer_config.json "chat_template") that turns a conversation into
/// the prompt text the model was trained on. Rendering follows Hugging Face apply_chat_template: trim_blocks and
/// lstrip_blocks on, variables messages, add_generation_prompt, bos_token, eos_token (plus any you pass, e.g. tools).
/// The interpreter is our own Jinja subset (no Jinja2 port is available on NuGet): for/if/set/macro, namespace(),
/// loop.*, slicing, filters (trim, length, tojson, selectattr, map, join, default, ...), tests (defined, none, string, ...).
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Node> _nodes;

    /// <exception cref="ChatTemplateException">the template does not parse (the message names the line).</exception>
    public ChatTemplate(string source, string? bosToken = null, string? eosToken = null)
    {
        Source = source ?? throw new ArgumentNullException(nameof(source));
        BosToken = bosToken;
        EosToken = eosToken;
        _nodes = JinjaParser.Parse(source);
    }

    public string Source { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }

    /// <summary>The template of a tokenizer_config.json (its default one), or <paramref name="fallback"/> when it has
    /// none; null when neither exists.</summary>
    public static ChatTemplate? FromConfig(TokenizerConfig config, string? fallback = ChatTemplates.ChatML)
    {
        ArgumentNullException.ThrowIfNull(config);
        string? src = config.ChatTemplate ?? fallback;
        return src is null ? null : new ChatTemplate(src, config.BosToken, config.EosToken);
    }

    /// <summary>Reads tokenizer_config.json (a path to it, or a folder holding it) and returns its template,
    /// or the fallback (ChatML unless given) when it has none.</summary>
    public static ChatTemplate Load(string path, string fallback = ChatTemplates.ChatML)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "tokenizer_config.json") : path;
        return FromConfig(TokenizerConfig.Load(file), fallback)!;
    }

    /// <summary>Renders a conversation. <paramref name="variables"/>: extra template variables (e.g. "tools" as
    /// lists/dictionaries or a JsonElement).</summary>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt = false, IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(m => (object?)m.ToTemplateValue()).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken ?? "",
            ["eos_token"] = EosToken ?? "",
        };
        if (variables is not null)
            foreach (var (k, v) in variables) globals[k] = JinjaValues.FromClr(v);
        return new JinjaInterpreter(globals).Render(_nodes);
    }

    /// <summary>Renders and tokenizes a conversation as Hugging Face apply_chat_template(tokenize=True) does: the
    /// template writes BOS and the chat markers itself, so no BOS is added and special-token text becomes ids.</summary>
    public int[] Encode(ITokenizer tokenizer, IEnumerable<ChatMessage> messages, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? variables = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Encode(Render(messages, addGenerationPrompt, variables), addBos: false, parseSpecial: true);
    }
}
