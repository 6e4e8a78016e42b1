namespace EdgeTune.Text;

/// <summary>A chat template that cannot be parsed or rendered, or that called raise_exception().</summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException(string message) : base(message) { }
    public ChatTemplateException(string message, Exception inner) : base(message, inner) { }
}
