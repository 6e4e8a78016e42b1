namespace EdgeTune.Text;

/// <summary>One turn of a conversation: role ("system", "user", "assistant", "tool") and its text.
/// <paramref name="Extra"/> adds more fields a template may read (e.g. "tool_calls", "tool_call_id").</summary>
public sealed record ChatMessage(string Role, string Content, IReadOnlyDictionary<string, object?>? Extra = null)
{
    public static ChatMessage System(string content) => new("system", content);
    public static ChatMessage User(string content) => new("user", content);
    public static ChatMessage Assistant(string content) => new("assistant", content);

    internal Dictionary<string, object?> ToTemplateValue()
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = Role, ["content"] = Content };
        if (Extra is not null)
            foreach (var (k, v) in Extra) d[k] = Internal.Jinja.JinjaValues.FromClr(v);
        return d;
    }
}
