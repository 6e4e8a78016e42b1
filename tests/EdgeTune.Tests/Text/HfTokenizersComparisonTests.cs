using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// Our tokenizer.json readers against Hugging Face tokenizers itself (Rust, through the test-only
/// Tokenizers.DotNet wrapper) on extra strings: unicode, emoji, whitespace runs, numbers, special tokens.
/// Skips where the native library cannot load on this platform.
/// </summary>
public class HfTokenizersComparisonTests
{
    private static readonly string[] Texts =
    [
        "Hello world", " Hello world", "  two  spaces  ", "\n\nnewlines\n\n\n", "\t tab\tin the middle",
        "numbers 0 12 345 6789 3.14159 1e-5 -42", "Grüße aus Köln, naïve café", "日本語のテキスト 和 中文", "emoji 🚀🦙😀 👩‍👩‍👧 ✅",
        "कैसे हो", "Привет, мир!", "code: def f(x):\n    return x**2  # square", "a<s>b</s>c", "<s>[INST] hi [/INST]",
        "<|user|>\nHello<|end|>\n<|assistant|>\n", "<unk> literal", "   ", "\u00a0nbsp\u2003em-space", "x\r\ny", "!!!!!! ?????? ......",
        "ÀÁÂÃÄÅ àáâãäå", "\U0001F9D1\u200D\U0001F4BB zero width joiner", "'s 't 're 've 'm 'll 'd", "▁already▁marked",
    ];

    private static Tokenizers.DotNet.Tokenizer? TryHf(string path)
    {
        try { return new Tokenizers.DotNet.Tokenizer(path); }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or TypeInitializationException or EntryPointNotFoundException)
        {
            Skip.If(true, $"Hugging Face tokenizers native library unavailable: {e.Message}");
            return null;
        }
    }

    [SkippableTheory]
    [InlineData("tinyllama-1.1b-chat-v1.0")]
    [InlineData("phi-3-mini-4k-instruct")]
    [InlineData("mistral-7b-instruct-v0.3")]
    public void Encode_MatchesHuggingFace(string model)
    {
        string path = TestAssets.Require($"tokenizers/{model}/tokenizer.json");
        using var hf = TryHf(path)!;
        var ours = TokenizerLoader.Load(path);
        var failures = new List<string>();
        foreach (string text in Texts)
        {
            int[] expected = hf.Encode(text).Select(u => (int)u).ToArray();
            int[] got = ours.Encode(text, addBos: ours.AddBosByDefault);
            if (!got.SequenceEqual(expected))
                failures.Add($"'{text}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', got)}]");
        }
        Assert.True(failures.Count == 0, $"{model}: {failures.Count}/{Texts.Length} differ:\n" + string.Join("\n", failures));
    }
}
