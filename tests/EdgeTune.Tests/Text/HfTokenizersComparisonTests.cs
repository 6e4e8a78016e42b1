using System.Text.Json;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// Our tokenizer.json readers against Hugging Face tokenizers itself (Rust, through the test-only
/// Tokenizers.DotNet wrapper) on extra strings: unicode, emoji, whitespace runs, numbers, special tokens.
/// Skips where the native library cannot load on this platform.
/// </summary>
public class HfTokenizersComparisonTests
{
    internal static readonly string[] Texts =
    [
        "Hello world", " Hello world", "  two  spaces  ", "\n\nnewlines\n\n\n", "\t tab\tin the middle",
        "numbers 0 12 345 6789 3.14159 1e-5 -42", "Grüße aus Köln, naïve café", "日本語のテキスト 和 中文", "emoji 🚀🦙😀 👩‍👩‍👧 ✅",
        "कैसे हो", "Привет, мир!", "code: def f(x):\n    return x**2  # square", "a<s>b</s>c", "<s>[INST] hi [/INST]",
        "<|user|>\nHello<|end|>\n<|assistant|>\n", "<unk> literal", "   ", "\u00a0nbsp\u2003em-space", "x\r\ny", "!!!!!! ?????? ......",
        "ÀÁÂÃÄÅ àáâãäå", "\U0001F9D1\u200D\U0001F4BB zero width joiner", "'s 't 're 've 'm 'll 'd", "▁already▁marked",
    ];

    internal static Tokenizers.DotNet.Tokenizer? TryHf(string path)
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
        var ours = TestTokenizers.Get($"tokenizers/{model}/tokenizer.json");
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

    [SkippableTheory]
    [InlineData("tinyllama-1.1b-chat-v1.0")]
    [InlineData("phi-3-mini-4k-instruct")]
    [InlineData("mistral-7b-instruct-v0.3")]
    public void Decode_MatchesHuggingFace(string model)
    {
        string path = TestAssets.Require($"tokenizers/{model}/tokenizer.json");
        using var hf = TryHf(path)!;
        var ours = TestTokenizers.Get($"tokenizers/{model}/tokenizer.json");
        var failures = new List<string>();
        foreach (string text in Texts)
        {
            uint[] ids = hf.Encode(text);
            string expected = hf.Decode(ids), got = ours.Decode(ids.Select(u => (int)u).ToArray(), skipSpecial: true);
            if (got != expected) failures.Add($"'{text}': HF '{expected}' ours '{got}'");
        }
        Assert.True(failures.Count == 0, $"{model}: {failures.Count}/{Texts.Length} differ:\n" + string.Join("\n", failures));
    }

    /// <summary>GPT-2 and Qwen2 ship vocab.json + merges.txt here; we write the tokenizer.json that HF would hold for
    /// them (GPT-2: ByteLevel pre-tokenizer with its regex; Qwen2: NFC, Split regex + ByteLevel(use_regex=false))
    /// and check our tokenizer.json reader against HF on it, llama.cpp's 46 inputs included.</summary>
    [SkippableTheory]
    [InlineData("gpt2")]
    [InlineData("qwen2.5-0.5b")]
    public void ByteLevelTokenizerJson_MatchesHuggingFace(string model)
    {
        string dir = TestAssets.Require($"tokenizers/{model}");
        string tmp = Path.Combine(Path.GetTempPath(), $"edgetune-{model}-{Environment.ProcessId}");
        Directory.CreateDirectory(tmp);
        try
        {
            string json = Path.Combine(tmp, "tokenizer.json");
            WriteByteLevelTokenizerJson(dir, json, qwen: model.StartsWith("qwen", StringComparison.Ordinal));
            using var hf = TryHf(json)!;
            var ours = TokenizerLoader.Load(json);
            var texts = Texts.Concat(LlamaCppVocabTests.ReadVectors("ggml-vocab-gpt-2.gguf").Select(v => v.Text)).ToList();
            var failures = new List<string>();
            foreach (string text in texts)
            {
                int[] expected = hf.Encode(text).Select(u => (int)u).ToArray();
                int[] got = ours.Encode(text);
                if (!got.SequenceEqual(expected)) failures.Add($"'{text}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', got)}]");
                else if (ours.Decode(got) != hf.Decode(hf.Encode(text))) failures.Add($"'{text}': decode differs");
            }
            Assert.True(failures.Count == 0, $"{model}: {failures.Count}/{texts.Count} differ:\n" + string.Join("\n", failures));
        }
        finally { Directory.Delete(tmp, true); }
    }

    internal static void WriteByteLevelTokenizerJson(string dir, string path, bool qwen)
    {
        using var vocabDoc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "vocab.json")));
        var merges = File.ReadLines(Path.Combine(dir, "merges.txt")).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal));
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteStartArray("added_tokens");
        var added = qwen
            ? TokenizerConfig.Load(Path.Combine(dir, "tokenizer_config.json")).AddedTokens
            : [new AddedToken("<|endoftext|>", 50256)];
        foreach (var a in added)
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id);
            w.WriteString("content", a.Content);
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", a.LStrip);
            w.WriteBoolean("rstrip", a.RStrip);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", a.Special);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (qwen)
        {
            w.WriteStartObject("normalizer");
            w.WriteString("type", "NFC");
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", ByteLevelBpeTokenizer.Qwen2Pattern);
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            WriteByteLevel(w, useRegex: false);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("normalizer");
            w.WritePropertyName("pre_tokenizer");
            WriteByteLevel(w, useRegex: true);
        }
        w.WritePropertyName("decoder");
        WriteByteLevel(w, useRegex: true);
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", false);
        w.WritePropertyName("vocab");
        vocabDoc.RootElement.WriteTo(w);
        w.WriteStartArray("merges");
        foreach (string m in merges) w.WriteStringValue(m);
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteByteLevel(Utf8JsonWriter w, bool useRegex)
    {
        w.WriteStartObject();
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", false);
        w.WriteBoolean("use_regex", useRegex);
        w.WriteEndObject();
    }
}
