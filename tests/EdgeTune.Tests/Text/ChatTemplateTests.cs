using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>Each real tokenizer_config.json chat template renders the documented prompt format of its family.</summary>
public class ChatTemplateTests
{
    private static readonly ChatMessage[] Conversation =
        [ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Hello!"), ChatMessage.Assistant("Hi there.")];
    private static readonly ChatMessage[] Prompt = Conversation[..2];

    private static ChatTemplate Load(string model) => ChatTemplate.Load(TestAssets.Require($"tokenizers/{model}"));

    [SkippableFact]
    public void Qwen25Instruct_ChatML()
    {
        var t = Load("qwen2.5-0.5b-instruct");
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi there.<|im_end|>\n",
            t.Render(Conversation));
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            t.Render(Prompt, addGenerationPrompt: true));
        // No system message: Qwen2.5-Instruct's default system prompt.
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            t.Render([ChatMessage.User("Hello!")], addGenerationPrompt: true));
    }

    [SkippableFact]
    public void Qwen25Base_ChatML_DefaultSystem()
    {
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            Load("qwen2.5-0.5b").Render([ChatMessage.User("Hello!")], addGenerationPrompt: true));
    }

    [SkippableFact]
    public void Qwen25Instruct_Tools_RendersToolBlockAndToolCalls()
    {
        var tools = new List<object?>
        {
            new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = "get_time", ["parameters"] = new Dictionary<string, object?>() } },
        };
        var call = new Dictionary<string, object?> { ["function"] = new Dictionary<string, object?> { ["name"] = "get_time", ["arguments"] = new Dictionary<string, object?> { ["tz"] = "UTC" } } };
        string s = Load("qwen2.5-0.5b-instruct").Render(
            [ChatMessage.User("time?"), new ChatMessage("assistant", "", new Dictionary<string, object?> { ["tool_calls"] = new List<object?> { call } }), new ChatMessage("tool", "12:00")],
            addGenerationPrompt: true, new Dictionary<string, object?> { ["tools"] = tools });
        Assert.Contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {}}}\n</tools>", s);
        Assert.Contains("<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call><|im_end|>\n", s);
        Assert.EndsWith("<|im_start|>user\n<tool_response>\n12:00\n</tool_response><|im_end|>\n<|im_start|>assistant\n", s);
    }

    [SkippableFact]
    public void Phi3_UserEndAssistant()
    {
        var t = Load("phi-3-mini-4k-instruct");
        Assert.Equal(
            "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|endoftext|>",
            t.Render(Conversation));
        Assert.Equal(
            "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\n",
            t.Render(Prompt, addGenerationPrompt: true));
    }

    [SkippableFact]
    public void Mistral_Inst_SystemGoesIntoLastUserTurn()
    {
        var t = Load("mistral-7b-instruct-v0.3");
        // v0.3's template puts the system message only into the LAST user turn; here that turn is followed by an
        // assistant reply, so "loop.last" is false for it and the system text is not shown.
        Assert.Equal("<s>[INST] Hello![/INST] Hi there.</s>", t.Render(Conversation));
        Assert.Equal("<s>[INST] You are a helpful assistant.\n\nHello![/INST]", t.Render(Prompt, addGenerationPrompt: true));
        Assert.Equal("<s>[INST] a[/INST] b</s>[INST] c[/INST]",
            t.Render([ChatMessage.User("a"), ChatMessage.Assistant(" b "), ChatMessage.User("c")]));
        var e = Assert.Throws<ChatTemplateException>(() => t.Render([ChatMessage.User("a"), ChatMessage.User("b")]));
        Assert.Contains("must alternate user/assistant", e.Message);
    }

    [SkippableFact]
    public void TinyLlama_NoTemplateInConfig_FallsBack_ZephyrGivesChatFormat()
    {
        string dir = TestAssets.Require("tokenizers/tinyllama-1.1b-chat-v1.0");
        var config = TokenizerConfig.Load(Path.Combine(dir, "tokenizer_config.json"));
        Assert.Null(config.ChatTemplate);
        Assert.Null(ChatTemplate.FromConfig(config, fallback: null));
        Assert.Equal("<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.Load(dir).Render([ChatMessage.User("Hello!")], addGenerationPrompt: true));

        var zephyr = ChatTemplate.FromConfig(config, ChatTemplates.Zephyr)!;
        Assert.Equal("<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello!</s>\n<|assistant|>\nHi there.</s>\n",
            zephyr.Render(Conversation));
        Assert.Equal("<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello!</s>\n<|assistant|>\n",
            zephyr.Render(Prompt, addGenerationPrompt: true));
    }

    [SkippableFact]
    public void Qwen_RenderedPrompt_TokenizesWithChatSpecials()
    {
        string dir = TestAssets.Require("tokenizers/qwen2.5-0.5b-instruct");
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        string prompt = ChatTemplate.Load(dir).Render(Prompt, addGenerationPrompt: true);
        int[] ids = ChatTemplate.Load(dir).Encode(tok, Prompt, addGenerationPrompt: true);
        Assert.Equal(tok.Encode(prompt), ids);
        Assert.Equal(3, ids.Count(i => i == 151644)); // <|im_start|> x3
        Assert.Equal(2, ids.Count(i => i == 151645)); // <|im_end|> x2
        Assert.Equal(prompt, tok.Decode(ids));
    }
}
