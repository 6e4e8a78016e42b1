namespace EdgeTune.Text;

/// <summary>Built-in chat templates (Jinja) for models whose tokenizer_config.json carries none.</summary>
public static class ChatTemplates
{
    /// <summary>ChatML ("&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n"), the fallback when a model has no template.</summary>
    public const string ChatML =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /// <summary>Zephyr format used by TinyLlama-1.1B-Chat: "&lt;|role|&gt;\ncontent" + EOS + "\n" per turn,
    /// "&lt;|assistant|&gt;\n" as the generation prompt.</summary>
    public const string Zephyr =
        "{% for message in messages %}\n" +
        "{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n' + message['content'] + eos_token }}\n" +
        "{% endif %}\n" +
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n" +
        "{% endfor %}";
}
