using System.Text;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Text;
using LLama;

namespace EdgeTune.Tests.Text;

/// <summary>
/// The real chat templates of Qwen3 (tokenizer_config.json), Gemma 3 (chat_template.jinja), Phi-3-mini 4k and 128k
/// and SmolLM2 (tokenizer_config.json) through our Jinja interpreter. Expected strings are written out from each
/// template's semantics; where llama.cpp has a built-in formatter for the family (llama_chat_apply_template, through
/// the test-only LLamaSharp package), the render is also compared with it.
/// </summary>
[Collection(LlamaCppCollection.Name)]
public class FamilyChatTemplateTests
{
    private const string Sys = "You are a helpful assistant.";

    /// <summary>(system, user, assistant, user).</summary>
    private static readonly ChatMessage[] Conversation =
        [ChatMessage.System(Sys), ChatMessage.User("Hello!"), ChatMessage.Assistant("Hi there."), ChatMessage.User("How are you?")];

    private static ChatTemplate Load(string model) => ChatTemplate.Load(TestAssets.Require($"tokenizers/{model}"));

    private static Dictionary<string, object?> Vars(params (string Key, object? Value)[] kv) => kv.ToDictionary(p => p.Key, p => p.Value);

    // ---------------------------------------------------------------- Qwen3

    [SkippableFact]
    public void Qwen3_Conversation_WithAndWithoutGenerationPrompt_AndThinkingSwitch()
    {
        var t = Load("qwen3-0.6b");
        const string body =
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n" +
            "<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n";
        Assert.Equal(body, t.Render(Conversation));
        Assert.Equal(body + "<|im_start|>assistant\n", t.Render(Conversation, addGenerationPrompt: true));
        Assert.Equal(body + "<|im_start|>assistant\n", t.Render(Conversation, true, Vars(("enable_thinking", true))));
        // enable_thinking=false pre-fills an empty think block.
        Assert.Equal(body + "<|im_start|>assistant\n<think>\n\n</think>\n\n", t.Render(Conversation, true, Vars(("enable_thinking", false))));
    }

    [SkippableFact]
    public void Qwen3_Reasoning_KeptOnlyAfterTheLastUserQuery()
    {
        var t = Load("qwen3-0.6b");
        var thought = ChatMessage.Assistant("<think>\nI should greet back.\n</think>\n\nHi there.");
        // The final assistant turn (after the last user query) shows its think block, an empty one when it has none.
        Assert.Equal(
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\nI should greet back.\n</think>\n\nHi there.<|im_end|>\n",
            t.Render([ChatMessage.User("Hello!"), thought]));
        Assert.Equal(
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHi there.<|im_end|>\n",
            t.Render([ChatMessage.User("Hello!"), ChatMessage.Assistant("Hi there.")]));
        // Earlier turns lose their reasoning: content is what follows </think>.
        Assert.Equal(
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n",
            t.Render([ChatMessage.User("Hello!"), thought, ChatMessage.User("Again")], addGenerationPrompt: true));
        // reasoning_content as a separate field.
        var withField = new ChatMessage("assistant", "\nAnswer.", new Dictionary<string, object?> { ["reasoning_content"] = "\nPlan.\n" });
        Assert.Equal("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nPlan.\n</think>\n\nAnswer.<|im_end|>\n",
            t.Render([ChatMessage.User("Q"), withField]));
    }

    [SkippableFact]
    public void Qwen3_Tools_ToolCalls_ToolResponses()
    {
        var t = Load("qwen3-0.6b");
        var tools = new List<object?>
        {
            new Dictionary<string, object?>
            {
                ["type"] = "function",
                ["function"] = new Dictionary<string, object?>
                {
                    ["name"] = "get_time", ["description"] = "Current time",
                    ["parameters"] = new Dictionary<string, object?>
                    {
                        ["type"] = "object",
                        ["properties"] = new Dictionary<string, object?> { ["tz"] = new Dictionary<string, object?> { ["type"] = "string" } },
                        ["required"] = new List<object?> { "tz" },
                    },
                },
            },
        };
        var call = new Dictionary<string, object?>
        {
            ["type"] = "function",
            ["function"] = new Dictionary<string, object?> { ["name"] = "get_time", ["arguments"] = new Dictionary<string, object?> { ["tz"] = "UTC" } },
        };
        var call2 = new Dictionary<string, object?> { ["name"] = "get_date", ["arguments"] = "{\"tz\": \"CET\"}" }; // no "function" wrapper, string arguments
        ChatMessage[] messages =
        [
            ChatMessage.System(Sys), ChatMessage.User("What time is it in UTC?"),
            new("assistant", "Let me check.", new Dictionary<string, object?> { ["tool_calls"] = new List<object?> { call, call2 } }),
            new("tool", "12:00"), new("tool", "2025-01-01"),
        ];
        string expected =
            "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
            "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"description\": \"Current time\", \"parameters\": {\"type\": \"object\", " +
            "\"properties\": {\"tz\": {\"type\": \"string\"}}, \"required\": [\"tz\"]}}}\n</tools>\n\n" +
            "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
            "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\nWhat time is it in UTC?<|im_end|>\n" +
            "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>\n" +
            "<tool_call>\n{\"name\": \"get_date\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n12:00\n</tool_response>\n<tool_response>\n2025-01-01\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n";
        Assert.Equal(expected, t.Render(messages, addGenerationPrompt: true, Vars(("tools", tools))));
        // A user turn that only carries tool responses does not count as the last query (multi-step tool use).
        Assert.Contains("<|im_start|>user\n<tool_response>\nx\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nDone.<|im_end|>\n",
            t.Render([ChatMessage.User("Go"), ChatMessage.Assistant("Calling."), ChatMessage.User("<tool_response>\nx\n</tool_response>"), ChatMessage.Assistant("Done.")]));
    }

    [SkippableFact]
    public void Qwen3_RenderedPrompt_TokenizesWithChatAndThinkTokens()
    {
        var t = Load("qwen3-0.6b");
        var tok = TestTokenizers.Get("tokenizers/qwen3-0.6b");
        int[] ids = t.Encode(tok, Conversation, addGenerationPrompt: true, Vars(("enable_thinking", false)));
        Assert.Equal(5, ids.Count(i => i == 151644)); // <|im_start|>
        Assert.Equal(4, ids.Count(i => i == 151645)); // <|im_end|>
        Assert.Equal([151644, 77091, 198, 151667, 271, 151668, 271], ids[^7..]); // <|im_start|>assistant\n<think>\n\n</think>\n\n
    }

    // ---------------------------------------------------------------- Gemma 3

    [SkippableFact]
    public void Gemma3_SystemFoldedIntoFirstUserTurn_AssistantIsModel()
    {
        var t = Load("gemma-3-270m-it");
        Assert.Equal("<bos>", t.BosToken);
        const string body =
            "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n<start_of_turn>model\nHi there.<end_of_turn>\n" +
            "<start_of_turn>user\nHow are you?<end_of_turn>\n";
        Assert.Equal(body, t.Render(Conversation));
        Assert.Equal(body + "<start_of_turn>model\n", t.Render(Conversation, addGenerationPrompt: true));
        Assert.Equal("<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
            t.Render([ChatMessage.User("Hello!")], addGenerationPrompt: true));
        // Content is trimmed; the system text is not.
        Assert.Equal("<bos><start_of_turn>user\n  Sys  \n\nHi<end_of_turn>\n",
            t.Render([ChatMessage.System("  Sys  "), ChatMessage.User("  Hi \n")]));
    }

    [SkippableFact]
    public void Gemma3_ContentParts_AndRoleAlternationError()
    {
        var t = Load("gemma-3-270m-it");
        var parts = new List<object?>
        {
            new Dictionary<string, object?> { ["type"] = "image" },
            new Dictionary<string, object?> { ["type"] = "text", ["text"] = " Describe this. " },
        };
        var multimodal = new ChatMessage("user", "", new Dictionary<string, object?> { ["content"] = parts });
        Assert.Equal("<bos><start_of_turn>user\n<start_of_image>Describe this.<end_of_turn>\n<start_of_turn>model\n",
            t.Render([multimodal], addGenerationPrompt: true));
        var e = Assert.Throws<ChatTemplateException>(() => t.Render([ChatMessage.User("a"), ChatMessage.User("b")]));
        Assert.Contains("Conversation roles must alternate user/assistant/user/assistant/...", e.Message);
        e = Assert.Throws<ChatTemplateException>(() => t.Render([ChatMessage.Assistant("first")]));
        Assert.Contains("must alternate", e.Message);
    }

    // ---------------------------------------------------------------- Phi-3

    [SkippableFact]
    public void Phi3Mini4k_AllRoles_EosWithoutGenerationPrompt()
    {
        var t = Load("phi-3-mini-4k-instruct");
        const string body =
            "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|user|>\nHow are you?<|end|>\n";
        Assert.Equal(body + "<|endoftext|>", t.Render(Conversation));
        Assert.Equal(body + "<|assistant|>\n", t.Render(Conversation, addGenerationPrompt: true));
    }

    [SkippableFact]
    public void Phi3Mini128k_BosFirst_SystemDropped_AssistantMarkerAfterEveryUserTurn()
    {
        var t = Load("phi-3-mini-128k-instruct");
        const string expected =
            "<s><|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n";
        Assert.Equal(expected, t.Render(Conversation));
        Assert.Equal(expected, t.Render(Conversation, addGenerationPrompt: true)); // the template ignores the flag
    }

    [SkippableFact]
    public void Phi3_RenderedPrompt_TokenizesWithMarkers()
    {
        var t = Load("phi-3-mini-4k-instruct");
        var tok = TestTokenizers.Get("tokenizers/phi-3-mini-4k-instruct");
        int[] ids = t.Encode(tok, Conversation, addGenerationPrompt: true);
        Assert.Equal(32006, ids[0]); // <|system|>
        Assert.Equal(4, ids.Count(i => i == 32007)); // <|end|>
        Assert.Equal(32001, ids[^1]); // <|assistant|> (its rstrip takes the final "\n")
        Assert.Equal(tok.Encode("<|system|>You are a helpful assistant.<|end|><|user|>Hello!<|end|><|assistant|>Hi there.<|end|><|user|>How are you?<|end|><|assistant|>"), ids);
    }

    // ---------------------------------------------------------------- SmolLM2

    [SkippableFact]
    public void SmolLM2_ChatML_DefaultSystemPrompt()
    {
        var t = Load("smollm2-135m-instruct");
        const string body =
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n" +
            "<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n";
        Assert.Equal(body, t.Render(Conversation));
        Assert.Equal(body + "<|im_start|>assistant\n", t.Render(Conversation, addGenerationPrompt: true));
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            t.Render([ChatMessage.User("Hello!")], addGenerationPrompt: true));
    }

    // ---------------------------------------------------------------- llama.cpp's built-in formatters

    private static string LlamaCppRender(string template, IEnumerable<ChatMessage> messages, bool addAssistant)
    {
        var tmpl = new LLamaTemplate(template) { AddAssistant = addAssistant };
        foreach (var m in messages) tmpl.Add(m.Role, m.Content);
        return Encoding.UTF8.GetString(tmpl.Apply());
    }

    /// <summary>llama.cpp recognizes each template by its markers and formats with its own C++ code; our Jinja render
    /// must agree with it. Known, documented differences: Gemma's &lt;bos&gt; comes from the template here and from
    /// the tokenizer in llama.cpp; Phi-3 4k's template ends a finished conversation with eos_token, llama.cpp does not.</summary>
    [SkippableTheory]
    [InlineData("qwen3-0.6b", "", "")]
    [InlineData("smollm2-135m-instruct", "", "")]
    [InlineData("gemma-3-270m-it", "<bos>", "")]
    [InlineData("phi-3-mini-4k-instruct", "", "<|endoftext|>")]
    public void Render_MatchesLlamaCppBuiltInFormat(string model, string ourPrefix, string ourSuffixWithoutPrompt)
    {
        var t = Load(model);
        LlamaCpp.RequireNative();
        ChatMessage[][] conversations =
        [
            Conversation,
            Conversation[..2],
            [ChatMessage.System("Be terse."), ChatMessage.User("2+2?"), ChatMessage.Assistant("4"), ChatMessage.User("And 3+3?"), ChatMessage.Assistant("6")],
        ];
        foreach (var conv in conversations)
        {
            if (model.StartsWith("qwen3", StringComparison.Ordinal) && conv[^1].Role == "assistant") continue; // Qwen3 adds a think block there
            foreach (bool gen in new[] { false, true })
            {
                string ours = t.Render(conv, gen);
                string reference = ourPrefix + LlamaCppRender(t.Source, conv, gen) + (gen ? "" : ourSuffixWithoutPrompt);
                Assert.True(reference == ours, $"{model} (gen={gen}, {conv.Length} messages):\nllama.cpp {FamilyTokenizerTests.Escape(reference)}\nours      {FamilyTokenizerTests.Escape(ours)}");
            }
        }
    }
}
