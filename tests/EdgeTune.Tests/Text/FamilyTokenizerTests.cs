using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// Tokenizers of the model families Qwen3, Phi-3 and SmolLM2 from their real files, checked against Hugging Face
/// tokenizers (Rust, through the test-only Tokenizers.DotNet wrapper) and llama.cpp's test vectors.
/// </summary>
public class FamilyTokenizerTests
{
    /// <summary>Chat-formatted strings in ChatML (Qwen3, SmolLM2) with Qwen3's thinking and tool markers.</summary>
    private static readonly string[] ChatMlTexts =
    [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>assistant\n<think>\nThe user greets me.\n</think>\n\nHello! How can I help?<|im_end|>\n",
        "<|im_start|>assistant\n<think>\n\n</think>\n\n",
        "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>",
        "<|im_start|>user\n<tool_response>\n12:00\n</tool_response><|im_end|>\n",
        "text<think>inline</think>more", " <think> spaced </think> ", "<think></think>", "<<think>>", "<think", "</think",
        "<|endoftext|><|endoftext|>", "<|im_start|", "<|im_end|>\n\n\n", "x<|im_end|>y",
        "<|fim_prefix|>def f():\n<|fim_suffix|>\n    return 1<|fim_middle|>", "<|vision_start|><|image_pad|><|vision_end|>",
        "<|repo_name|>edgetune<|file_sep|>src/a.cs", "<|box_start|>(1,2),(3,4)<|box_end|>",
        "<|im_start|>user\nWhat is 12345 * 678?<|im_end|>\n<|im_start|>assistant\n12345 * 678 = 8369910<|im_end|>",
    ];

    private static List<string> Compare(Tokenizers.DotNet.Tokenizer hf, ITokenizer ours, IEnumerable<string> texts, bool decode)
    {
        var failures = new List<string>();
        foreach (string text in texts)
        {
            uint[] hfIds = hf.Encode(text);
            int[] expected = hfIds.Select(u => (int)u).ToArray();
            int[] got = ours.Encode(text, addBos: ours.AddBosByDefault);
            if (!got.SequenceEqual(expected))
                failures.Add($"{Escape(text)}: HF [{string.Join(' ', expected)}] ours [{string.Join(' ', got)}]");
            else if (decode && ours.Decode(got, skipSpecial: true) != hf.Decode(hfIds))
                failures.Add($"{Escape(text)}: decode HF {Escape(hf.Decode(hfIds))} ours {Escape(ours.Decode(got, skipSpecial: true))}");
        }
        return failures;
    }

    internal static string Escape(string s) => "'" + s.Replace("\n", "\\n").Replace("\t", "\\t").Replace("\r", "\\r") + "'";

    // ---------------------------------------------------------------- Qwen3

    [SkippableFact]
    public void Qwen3_Folder_LoadsByteLevelBpe_WithConfigAddedTokens_AndGenerationConfigBos()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen3-0.6b");
        var bpe = Assert.IsType<ByteLevelBpeTokenizer>(tok);
        Assert.Equal(ByteLevelBpeTokenizer.Qwen2Pattern, bpe.Pattern);
        Assert.True(bpe.Nfc);
        Assert.Equal(151669, tok.VocabSize); // 151643 BPE tokens + 26 added (151643..151668)
        Assert.Equal(151645, tok.EosId); // tokenizer_config eos_token <|im_end|>
        Assert.Equal(151643, tok.PadId); // pad_token <|endoftext|>
        Assert.Equal(151643, tok.BosId); // tokenizer_config has bos_token null; generation_config bos_token_id 151643
        Assert.False(tok.AddBosByDefault);
        Assert.Equal(26, tok.SpecialTokens.Count);
        Assert.Equal(151667, tok.SpecialTokens["<think>"]);
        Assert.Equal(151668, tok.SpecialTokens["</think>"]);
        Assert.Equal(151657, tok.SpecialTokens["<tool_call>"]);
        Assert.Equal(151666, tok.SpecialTokens["</tool_response>"]);
        Assert.True(tok.IsSpecial(151644)); // <|im_start|>: special
        Assert.False(tok.IsSpecial(151667)); // <think>: added but not special
        Assert.False(tok.IsSpecial(151657)); // <tool_call>
        Assert.Equal("<think>", tok.IdToToken(151667));
    }

    [SkippableFact]
    public void Qwen3_SpecialAndNonSpecialAddedTokens_SplitAndDecode()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen3-0.6b");
        const string text = "<|im_start|>assistant\n<think>\nok\n</think>\n\nDone<|im_end|>";
        int[] ids = tok.Encode(text);
        Assert.Equal(151644, ids[0]);
        Assert.Equal(151645, ids[^1]);
        Assert.Contains(151667, ids);
        Assert.Contains(151668, ids);
        Assert.Equal(text, tok.Decode(ids));
        // Skipping special tokens drops <|im_start|>/<|im_end|> but keeps the non-special <think> markers.
        Assert.Equal("assistant\n<think>\nok\n</think>\n\nDone", tok.Decode(ids, skipSpecial: true));
        // parseSpecial=false: special markers become plain text, non-special added tokens are still matched (as HF
        // does with split_special_tokens=True).
        int[] plain = tok.Encode(text, parseSpecial: false);
        Assert.DoesNotContain(151644, plain);
        Assert.DoesNotContain(151645, plain);
        Assert.Contains(151667, plain);
        Assert.Equal(text, tok.Decode(plain));
        // With BOS on request (generation config's <|endoftext|>).
        Assert.Equal(151643, tok.Encode("hi", addBos: true)[0]);
    }

    [SkippableFact]
    public void Qwen3_LlamaCppQwen2Vectors_AllExact()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen3-0.6b");
        var failures = new List<string>();
        foreach (var (text, ids) in LlamaCppVocabTests.ReadVectors("ggml-vocab-qwen2.gguf"))
        {
            int[] got = tok.Encode(text, parseSpecial: false);
            if (!got.SequenceEqual(ids)) failures.Add($"{Escape(text)}: expected [{string.Join(' ', ids)}] got [{string.Join(' ', got)}]");
            else if (tok.Decode(got) != text) failures.Add($"{Escape(text)}: decode gave {Escape(tok.Decode(got))}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/46 failed:\n" + string.Join("\n", failures));
    }

    /// <summary>Qwen3 ships no tokenizer.json here: the test writes the one Hugging Face would hold (NFC, Qwen2
    /// Split regex + ByteLevel, the 26 added tokens with their special flags) and checks the folder loaded through
    /// vocab.json + merges.txt + tokenizer_config.json against HF on it, chat markup included.</summary>
    [SkippableFact]
    public void Qwen3_VocabMergesFolder_MatchesHuggingFace()
    {
        string dir = TestAssets.Require("tokenizers/qwen3-0.6b");
        string tmp = Directory.CreateTempSubdirectory("edgetune-qwen3-").FullName;
        try
        {
            string json = Path.Combine(tmp, "tokenizer.json");
            HfTokenizersComparisonTests.WriteByteLevelTokenizerJson(dir, json, qwen: true);
            using var hf = HfTokenizersComparisonTests.TryHf(json)!;
            var ours = TestTokenizers.Get("tokenizers/qwen3-0.6b");
            var texts = HfTokenizersComparisonTests.Texts.Concat(ChatMlTexts)
                .Concat(LlamaCppVocabTests.ReadVectors("ggml-vocab-qwen2.gguf").Select(v => v.Text)).ToList();
            var failures = Compare(hf, ours, texts, decode: true);
            Assert.True(failures.Count == 0, $"qwen3: {failures.Count}/{texts.Count} differ:\n" + string.Join("\n", failures));
        }
        finally { Directory.Delete(tmp, true); }
    }

    // ---------------------------------------------------------------- Phi-3

    private static readonly string[] Phi3ChatTexts =
    [
        "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n",
        "<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|endoftext|>",
        "<s><|user|>\nWrite a haiku<|end|>\n<|assistant|>\n",
        "<|user|>  \n\t  indented after the marker<|end|>",
        "spaces before   <|end|>   and after", "tab\t<|end|>\tx", "<|end|><|end|><|end|>", "<|end|>\n\n\n<|user|>",
        "text</s> after eos", "</s>   \n</s>x", "<s> <s>  <s>", "a<s>b", "<|endoftext|> next", "<|endoftext|>\n",
        "<|placeholder1|>x<|placeholder6|>", "<|user|", "|user|>", "<|user|><|assistant|>", "<unk>x<unk>",
        "<|assistant|>\n```python\nprint('hi')\n```<|end|>", "<|user|>\nÜbersetze: 日本語 🚀<|end|>",
    ];

    /// <summary>Phi-3's markers are added tokens with rstrip=true and lstrip=false (&lt;|endoftext|&gt; and &lt;s&gt;
    /// strip nothing, &lt;/s&gt; is non-special with rstrip); HF is the reference for how whitespace on either side
    /// goes, on chat-formatted text and on the rendered chat template.</summary>
    [SkippableFact]
    public void Phi3_ChatFormattedText_MatchesHuggingFace()
    {
        string path = TestAssets.Require("tokenizers/phi-3-mini-4k-instruct/tokenizer.json");
        using var hf = HfTokenizersComparisonTests.TryHf(path)!;
        var ours = TestTokenizers.Get("tokenizers/phi-3-mini-4k-instruct");
        var template = ChatTemplate.Load(TestAssets.Require("tokenizers/phi-3-mini-4k-instruct"));
        ChatMessage[] chat = [ChatMessage.System("Be brief."), ChatMessage.User(" Hello  "), ChatMessage.Assistant("Hi.\n"), ChatMessage.User("Bye")];
        var texts = Phi3ChatTexts.Concat(HfTokenizersComparisonTests.Texts)
            .Append(template.Render(chat)).Append(template.Render(chat, addGenerationPrompt: true)).ToList();
        var failures = Compare(hf, ours, texts, decode: true);
        Assert.True(failures.Count == 0, $"phi-3: {failures.Count}/{texts.Count} differ:\n" + string.Join("\n", failures));
    }

    [SkippableFact]
    public void Phi3_AddedTokenFlags_FromTokenizerJson()
    {
        var tok = (TokenizerBase)TestTokenizers.Get("tokenizers/phi-3-mini-4k-instruct");
        var byContent = tok.AddedTokens.ToDictionary(t => t.Content);
        foreach (string marker in new[] { "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|placeholder1|>" })
            Assert.Equal((true, false, true), (byContent[marker].Special, byContent[marker].LStrip, byContent[marker].RStrip));
        Assert.Equal((true, false, false), (byContent["<|endoftext|>"].Special, byContent["<|endoftext|>"].LStrip, byContent["<|endoftext|>"].RStrip));
        Assert.Equal((false, false, true), (byContent["</s>"].Special, byContent["</s>"].LStrip, byContent["</s>"].RStrip));
        Assert.Equal(32000, tok.EosId); // tokenizer_config eos_token <|endoftext|>
        Assert.Equal(32000, tok.PadId);
        Assert.Equal(1, tok.BosId);
        // rstrip: every whitespace character after <|user|> belongs to it; the text after gets the "▁" prefix again.
        Assert.Equal(tok.Encode("<|user|>Hi"), tok.Encode("<|user|> \n\t Hi"));
        // no lstrip: the spaces before <|end|> stay text.
        Assert.NotEqual(tok.Encode("Hi<|end|>"), tok.Encode("Hi  <|end|>"));
    }

    // ---------------------------------------------------------------- SmolLM2

    private static readonly string[] DigitTexts =
    [
        "12345", "a 1 b 22 c 333", "3.14159", " 2024-01-01", "  42  ", "x1y2z3", "version 1.2.3-rc4", "$1,000,000.00",
        "\u0661\u0662\u0663 Arabic-Indic digits", "\u00b2\u00b3 superscripts", "\u216b roman twelve", "\u00bd half", "100%",
        "<|im_start|>user\nWhat is 12*34?<|im_end|>\n<|im_start|>assistant\n408<|im_end|>\n",
    ];

    /// <summary>SmolLM2's tokenizer.json runs a Digits(individual_digits) pre-tokenizer before the GPT-2 ByteLevel
    /// regex: every digit is its own piece and a space before a number stays a separate token.</summary>
    [SkippableFact]
    public void SmolLM2_TokenizerJson_MatchesHuggingFace()
    {
        string path = TestAssets.Require("tokenizers/smollm2-135m-instruct/tokenizer.json");
        using var hf = HfTokenizersComparisonTests.TryHf(path)!;
        var ours = TestTokenizers.Get("tokenizers/smollm2-135m-instruct");
        var bpe = Assert.IsType<ByteLevelBpeTokenizer>(ours);
        Assert.Equal(DigitSplit.Individual, bpe.Digits);
        Assert.Equal(49152, ours.VocabSize);
        Assert.Equal(1, ours.BosId); // <|im_start|>
        Assert.Equal(2, ours.EosId); // <|im_end|>
        Assert.Equal(2, ours.PadId);
        Assert.False(ours.AddBosByDefault);
        var texts = HfTokenizersComparisonTests.Texts.Concat(DigitTexts).Concat(ChatMlTexts)
            .Concat(LlamaCppVocabTests.ReadVectors("ggml-vocab-gpt-2.gguf").Select(v => v.Text)).ToList();
        var failures = Compare(hf, ours, texts, decode: true);
        Assert.True(failures.Count == 0, $"smollm2: {failures.Count}/{texts.Count} differ:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void DigitPieces_RunsAndIndividual()
    {
        static string[] Cut(string s, bool individual) =>
            ByteLevelBpeTokenizer.DigitPieces(s, individual).Select(p => s.Substring(p.Start, p.Length)).ToArray();
        Assert.Equal(["a ", "1", "2", " b"], Cut("a 12 b", individual: true));
        Assert.Equal(["a ", "12", " b"], Cut("a 12 b", individual: false));
        Assert.Equal(["\u0661", "\u0662", "x", "\u00bd"], Cut("\u0661\u0662x\u00bd", individual: true)); // Nd, Nd, letter, No
        Assert.Equal(["\U0001D7D9", "\U0001D7DA"], Cut("\U0001D7D9\U0001D7DA", individual: true)); // astral Nd digits stay whole
        Assert.Equal(["plain"], Cut("plain", individual: true));
        Assert.Empty(Cut("", individual: true));
    }
}
