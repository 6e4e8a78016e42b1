using System.Buffers.Binary;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;
using EdgeTune.Tests.Text;
using EdgeTune.Text;

namespace EdgeTune.Tests.Formats;

/// <summary>The tokenizer and chat template embedded in GGUF files: llama.cpp's files, our own exports, odd metadata.</summary>
public sealed class GgufTokenizerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// stories260K as llama.cpp's convert-llama2c-to-ggml writes it: architecture llama with its hyperparameters but no
    /// vocab_size, the llama2.c weights under llama.cpp names (q/k rows stay as llama2.c has them) plus output.weight as a
    /// copy of the embedding, general.* keys, and the tok512 vocabulary as model "llama" (BOS/EOS renamed &lt;s&gt;/&lt;/s&gt;,
    /// spaces as "▁", scores, token types); separator and padding ids are -1 written into UInt32 fields (0xFFFFFFFF).
    /// </summary>
    internal static void WriteLlamaCppStories260K(string path, IEnumerable<KeyValuePair<string, GgufValue>>? extra = null)
    {
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        using var ck = Llama2cCheckpoint.Open(TestAssets.Require("stories260K/stories260K.bin"));
        int n = tok.VocabSize;
        var tokens = new string[n];
        var scores = new float[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            tokens[i] = i switch { 0 => "<unk>", 1 => "<s>", 2 => "</s>", _ => tok.IdToToken(i)!.Replace(' ', '\u2581') };
            scores[i] = tok.Score(i);
            types[i] = i switch { 0 => 2, 1 or 2 => 3, < 259 => 6, _ => 1 };
        }
        var h = ck.Header;
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", "llama"),
            new("general.name", "stories260K"),
            new("general.file_type", 0u),
            new("llama.context_length", (uint)h.SeqLen),
            new("llama.embedding_length", (uint)h.Dim),
            new("llama.feed_forward_length", (uint)h.HiddenDim),
            new("llama.attention.head_count", (uint)h.NHeads),
            new("llama.attention.head_count_kv", (uint)h.NKvHeads),
            new("llama.block_count", (uint)h.NLayers),
            new("llama.rope.dimension_count", (uint)h.HeadSize),
            new("llama.attention.layer_norm_rms_epsilon", 1e-5f),
            new("tokenizer.ggml.model", "llama"),
            new("tokenizer.ggml.tokens", tokens),
            new("tokenizer.ggml.scores", scores),
            new("tokenizer.ggml.token_type", types),
            new("tokenizer.ggml.unknown_token_id", 0u),
            new("tokenizer.ggml.bos_token_id", 1u),
            new("tokenizer.ggml.eos_token_id", 2u),
            new("tokenizer.ggml.seperator_token_id", uint.MaxValue), // llama.cpp's spelling of the key
            new("tokenizer.ggml.padding_token_id", uint.MaxValue),
        };
        if (extra is not null) meta.AddRange(extra);
        var tensors = ck.Tensors.Select(t => new KeyValuePair<string, Tensor>(GgufTensorNames.ToGguf(t.Name)!, ck.GetTensor(t.Name))).ToList();
        tensors.Add(new("output.weight", ck.GetTensor("model.embed_tokens.weight")));
        GgufWriter.Write(path, meta, tensors);
    }

    private static int[][] Tok512Vectors()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestAssets.Require("stories260K/tok512_encode_vectors.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
    }

    /// <summary>llama2.c's encode output for 11 texts (spaces, digits, accents, emoji and CJK through byte fallback): the texts
    /// come from decoding the ids with llama2.c's own tokenizer.</summary>
    private static void AssertEncodesLikeLlama2c(ITokenizer tok)
    {
        var reference = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        var cases = Tok512Vectors();
        Assert.Equal(11, cases.Length);
        foreach (int[] ids in cases)
            Assert.Equal(ids, tok.Encode(reference.Decode(ids, skipSpecial: true), addBos: true));
    }

    // ---- (a) a llama.cpp-converted model runs with the tokenizer it carries ----

    [SkippableFact]
    public void LlamaCppStories260K_LoadsWithoutATokenizerFile_AndReproducesRunC()
    {
        string path = _dir.File("stories260K.gguf");
        WriteLlamaCppStories260K(path,
        [
            new("general.source.url", "https://github.com/karpathy/llama2.c"), // keys this reader does not know
            new("llama2c.vocab_checksum", GgufValue.UInt64(0xDEADBEEFCAFEUL)),
            new("tokenizer.ggml.eot_token_id", -1),
            new("future.nested", GgufValue.Array(new[] { GgufValue.Array(new[] { 1.5, 2.5 }), GgufValue.Array(new[] { 3.5 }) })),
        ]);

        using var loaded = ModelLoader.Load(path);
        Assert.Equal(path, loaded.Source);
        Assert.Equal(512, loaded.Model.VocabSize);
        Assert.Null(loaded.Config.PadTokenId);
        Assert.Equal(1, loaded.Config.BosTokenId);
        Assert.Equal([2], loaded.Config.EosTokenIds);
        var tok = Assert.IsType<SentencePieceBpeTokenizer>(loaded.Tokenizer);
        Assert.Equal(512, tok.VocabSize);
        Assert.Equal((1, 2, 0), (tok.BosId, tok.EosId, tok.UnkId));
        Assert.Null(tok.PadId);
        Assert.True(tok.AddBosByDefault);
        Assert.Null(loaded.ChatTemplate);
        Stories260KReference.AssertGreedyMatchesRunC(loaded);
        AssertEncodesLikeLlama2c(tok);
    }

    [SkippableFact]
    public void EmbeddedChatTemplate_GetsTheVocabularysBosAndEos()
    {
        string path = _dir.File("chat.gguf");
        WriteLlamaCppStories260K(path,
            [new("tokenizer.chat_template", "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}")]);
        using var loaded = ModelLoader.Load(path);
        var template = Assert.IsType<ChatTemplate>(loaded.ChatTemplate);
        string text = template.Render([new ChatMessage("user", "Once upon a time")]);
        Assert.Equal("<s>user: Once upon a time</s>", text);
        int[] ids = template.Encode(loaded.RequireTokenizer(), [new ChatMessage("user", "Once upon a time")]);
        Assert.Equal(1, ids[0]);
        Assert.Equal(2, ids[^1]);
    }

    [SkippableFact]
    public void ExplicitTokenizerWinsOverTheEmbeddedOne()
    {
        string path = _dir.File("stories260K.gguf");
        WriteLlamaCppStories260K(path);
        using var loaded = ModelLoader.Load(path, TestAssets.Require("stories260K/tok512.bin"));
        Assert.IsType<Llama2cTokenizer>(loaded.Tokenizer);
        Stories260KReference.AssertGreedyMatchesRunC(loaded);
    }

    // ---- (b) llama.cpp's vocab-only files against their test vectors ----

    [SkippableFact]
    public void Gpt2VocabGguf_EmbeddedTokenizer_AllVectorsExact()
    {
        string path = TestAssets.Require("llamacpp-vocab/ggml-vocab-gpt-2.gguf");
        var info = GgufTokenizer.Read(path);
        Assert.Equal("gpt2", info.Model);
        Assert.Equal("gpt-2", info.PreTokenizer);
        var tok = Assert.IsType<ByteLevelBpeTokenizer>(info.Tokenizer);
        Assert.Equal(50257, tok.VocabSize);
        Assert.Equal((50256, 50256), (tok.BosId, tok.EosId));
        Assert.True(tok.IsSpecial(50256));
        Assert.Equal([50256], tok.Encode("<|endoftext|>"));
        Assert.False(info.AddBosToken);
        Assert.Null(info.ChatTemplate);
        LlamaCppVocabTests.CheckAll(tok, "ggml-vocab-gpt-2.gguf", roundTrip: true);
        // TokenizerLoader takes a .gguf as a tokenizer file too.
        LlamaCppVocabTests.CheckAll(TokenizerLoader.Load(path), "ggml-vocab-gpt-2.gguf", roundTrip: true);
    }

    [SkippableFact]
    public void Phi3VocabGguf_EmbeddedTokenizer_AllVectorsExact_AndItsChatTemplate()
    {
        var info = GgufTokenizer.Read(TestAssets.Require("llamacpp-vocab/ggml-vocab-phi-3.gguf"));
        Assert.Equal("llama", info.Model);
        var tok = Assert.IsType<SentencePieceBpeTokenizer>(info.Tokenizer);
        Assert.Equal(32064, tok.VocabSize);
        Assert.Equal((1, 32000, 0, 32000), (tok.BosId, tok.EosId, tok.UnkId, tok.PadId));
        Assert.True(info.AddBosToken);
        Assert.False(info.AddEosToken);
        LlamaCppVocabTests.CheckAll(tok, "ggml-vocab-phi-3.gguf", roundTrip: false);

        // Control tokens are split out of the text when specials are parsed, and only then.
        Assert.Equal([32010], tok.Encode("<|user|>"));
        Assert.NotEqual([32010], tok.Encode("<|user|>", parseSpecial: false));
        Assert.True(tok.IsSpecial(32007));
        var template = Assert.IsType<ChatTemplate>(info.ChatTemplate);
        Assert.Equal("<s>", template.BosToken);
        Assert.Equal("<|endoftext|>", template.EosToken);
        Assert.Equal("<s><|user|>\nHi<|end|>\n<|assistant|>\n", template.Render([new ChatMessage("user", "Hi")], addGenerationPrompt: true));
        int[] ids = template.Encode(tok, [new ChatMessage("user", "Hi")], addGenerationPrompt: true);
        Assert.Equal([1, 32010], ids[..2]);
        Assert.Contains(32007, ids);
        Assert.Contains(32001, ids);
    }

    // ---- what GgufTokenizerMetadata writes reads back to the same tokenizer ----

    [SkippableTheory]
    [InlineData("tokenizers/gpt2", "ggml-vocab-gpt-2.gguf", "gpt-2", true)]
    [InlineData("tokenizers/qwen2.5-0.5b", "ggml-vocab-qwen2.gguf", "qwen2", true)]
    [InlineData("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json", "ggml-vocab-llama-spm.gguf", null, false)]
    public void ExportedTokenizerMetadata_ReadsBackToTheSameTokenization(string tokenizer, string vectors, string? pre, bool roundTrip)
    {
        var source = TestTokenizers.Get(tokenizer);
        string path = _dir.File("vocab.gguf");
        GgufWriter.Write(path, GgufTokenizerMetadata.For(source, source.VocabSize), Array.Empty<Tensor>());
        var info = GgufTokenizer.Read(path);
        if (pre is not null) Assert.Equal(pre, info.PreTokenizer);
        var tok = info.Tokenizer;
        Assert.Equal(source.GetType(), tok.GetType());
        Assert.Equal(source.VocabSize, tok.VocabSize);
        Assert.Equal((source.BosId, source.EosId, source.AddBosByDefault), (tok.BosId, tok.EosId, tok.AddBosByDefault));
        foreach (var (text, id) in source.SpecialTokens) Assert.Equal(id, tok.TokenToId(text));
        LlamaCppVocabTests.CheckAll(tok, vectors, roundTrip);
    }

    [SkippableFact]
    public void ExportedLlama2cVocabulary_ReadsBackAndEncodesLikeLlama2c()
    {
        var source = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        string path = _dir.File("tok512.gguf");
        GgufWriter.Write(path, GgufTokenizerMetadata.For(source, 512), Array.Empty<Tensor>());
        var tok = GgufTokenizer.Read(path).Tokenizer;
        Assert.Equal((1, 2, 0), (tok.BosId, tok.EosId, tok.UnkId));
        AssertEncodesLikeLlama2c(tok);
    }

    // ---- (c) odd and bad metadata ----

    /// <summary>A vocab-only SentencePiece file: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte tokens, then ▁ a b ▁a ab ▁ab.</summary>
    private static List<KeyValuePair<string, GgufValue>> TinyLlamaVocab(params KeyValuePair<string, GgufValue>[] overrides)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        tokens.AddRange(Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"));
        tokens.AddRange(["\u2581", "a", "b", "\u2581a", "ab", "\u2581ab"]);
        var types = tokens.Select((t, i) => i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1).ToArray();
        var scores = tokens.Select((t, i) => i < 262 ? 0f : -(float)(i - 261)).ToArray();
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", "llama"),
            new("tokenizer.ggml.model", "llama"),
            new("tokenizer.ggml.tokens", tokens.ToArray()),
            new("tokenizer.ggml.scores", scores),
            new("tokenizer.ggml.token_type", types),
            new("tokenizer.ggml.bos_token_id", 1u),
            new("tokenizer.ggml.eos_token_id", 2u),
        };
        foreach (var o in overrides)
        {
            meta.RemoveAll(m => m.Key == o.Key);
            meta.Add(o);
        }
        return meta;
    }

    private static KeyValuePair<string, GgufValue> KV(string key, GgufValue value) => new(key, value);

    private string Write(List<KeyValuePair<string, GgufValue>> meta, string name = "vocab.gguf")
    {
        string path = _dir.File(name);
        GgufWriter.Write(path, meta, Array.Empty<Tensor>());
        return path;
    }

    [Fact]
    public void TokenIdValues_MinusOneInAnyWidthIsNone()
    {
        Assert.Null(GgufValue.UInt32(uint.MaxValue).AsTokenId());
        Assert.Null(GgufValue.Int32(-1).AsTokenId());
        Assert.Null(GgufValue.Int64(-1).AsTokenId());
        Assert.Null(GgufValue.UInt64(ulong.MaxValue).AsTokenId());
        Assert.Equal(7, GgufValue.UInt32(7).AsTokenId());
        Assert.Equal(0, GgufValue.Int16(0).AsTokenId());
        Assert.Throws<OverflowException>(() => GgufValue.Int32(-2).AsTokenId());
        Assert.Throws<OverflowException>(() => GgufValue.UInt32(uint.MaxValue - 1).AsTokenId());
        Assert.Throws<InvalidCastException>(() => GgufValue.String("1").AsTokenId());
    }

    [Fact]
    public void MinusOneIds_AndUnknownKeys_AreTolerated()
    {
        string path = Write(TinyLlamaVocab(
            KV("tokenizer.ggml.unknown_token_id", -1),
            KV("tokenizer.ggml.padding_token_id", uint.MaxValue),
            KV("tokenizer.ggml.seperator_token_id", uint.MaxValue),
            KV("tokenizer.ggml.cls_token_id", GgufValue.Int64(-1)),
            KV("tokenizer.ggml.some_future_flag", true),
            KV("vendor.blob", GgufValue.Array(new byte[] { 1, 2, 3 }))));
        var info = GgufTokenizer.Read(path);
        var tok = info.Tokenizer;
        Assert.Null(tok.UnkId);
        Assert.Null(tok.PadId);
        Assert.Equal((1, 2), (tok.BosId, tok.EosId));
        // "▁a" (-1) beats "ab" (-2), then "▁ab" (-3): both words end whole; a character outside the vocabulary
        // falls back to its UTF-8 bytes (<0xNN> = id 3 + byte).
        Assert.Equal([1, 264, 264], tok.Encode("ab ab", addBos: true));
        Assert.Equal([259, 3 + 0xC3, 3 + 0xA9], tok.Encode("\u00e9"));
        Assert.Equal("ab ab", tok.Decode([1, 264, 264], skipSpecial: true));
    }

    [Fact]
    public void NoSpacePrefix_AndNoBosByDefault_AreRead()
    {
        string path = Write(TinyLlamaVocab(KV("tokenizer.ggml.add_space_prefix", false), KV("tokenizer.ggml.add_bos_token", false)));
        var info = GgufTokenizer.Read(path);
        Assert.False(info.AddBosToken);
        Assert.False(info.Tokenizer.AddBosByDefault);
        Assert.Equal([263], info.Tokenizer.Encode("ab"));
    }

    [Fact]
    public void BadTokenizerMetadata_IsRefusedNamingFileKeyAndValue()
    {
        var e1 = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(Write(TinyLlamaVocab(KV("tokenizer.ggml.eos_token_id", 999u)), "a.gguf")));
        Assert.Contains("a.gguf", e1.Message);
        Assert.Contains("tokenizer.ggml.eos_token_id", e1.Message);
        Assert.Contains("999", e1.Message);

        var e2 = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(Write(TinyLlamaVocab(KV("tokenizer.ggml.bos_token_id", -7)), "b.gguf")));
        Assert.Contains("tokenizer.ggml.bos_token_id", e2.Message);
        Assert.Contains("-7", e2.Message);

        var noScores = TinyLlamaVocab();
        noScores.RemoveAll(m => m.Key == "tokenizer.ggml.scores");
        var e3 = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(Write(noScores, "c.gguf")));
        Assert.Contains("tokenizer.ggml.scores", e3.Message);

        var e4 = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(Write(TinyLlamaVocab(KV("tokenizer.ggml.scores", new[] { 1f, 2f })), "d.gguf")));
        Assert.Contains("has 2 entries", e4.Message);

        var e5 = Assert.Throws<NotSupportedException>(() => GgufTokenizer.Read(Write(TinyLlamaVocab(KV("tokenizer.ggml.model", "bert")), "e.gguf")));
        Assert.Contains("e.gguf", e5.Message);
        Assert.Contains("'bert'", e5.Message);

        var e6 = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(Write([new("general.architecture", "llama")], "f.gguf")));
        Assert.Contains("no tokenizer", e6.Message);
    }

    private static List<KeyValuePair<string, GgufValue>> TinyGpt2Vocab(string? pre) =>
    [
        new("tokenizer.ggml.model", "gpt2"),
        .. pre is null ? [] : new KeyValuePair<string, GgufValue>[] { new("tokenizer.ggml.pre", pre) },
        new("tokenizer.ggml.tokens", new[] { "a", "b", "c", "bc", "abc", "<|end|>" }),
        new("tokenizer.ggml.token_type", new[] { 1, 1, 1, 1, 1, 3 }),
        new("tokenizer.ggml.merges", new[] { "b c" }),
        new("tokenizer.ggml.eos_token_id", 5u),
    ];

    [Fact]
    public void UnknownPreTokenizer_IsRefusedByName_KnownOnesRead()
    {
        var e = Assert.Throws<NotSupportedException>(() => GgufTokenizer.Read(Write(TinyGpt2Vocab("jais-bpe"))));
        Assert.Contains("tokenizer.ggml.pre", e.Message);
        Assert.Contains("'jais-bpe'", e.Message);
        Assert.Contains("smollm", e.Message);
        foreach (string name in new[] { "default", "gpt-2", "llama-bpe", "llama3", "qwen2", "smollm", "smaug-bpe" })
            Assert.IsType<ByteLevelBpeTokenizer>(GgufTokenizer.Read(Write(TinyGpt2Vocab(name), name + ".gguf")).Tokenizer);
        // No pre name at all: llama.cpp's "default".
        var info = GgufTokenizer.Read(Write(TinyGpt2Vocab(null), "none.gguf"));
        Assert.Null(info.PreTokenizer);
        Assert.Equal(ByteLevelBpeTokenizer.Gpt2Pattern, ((ByteLevelBpeTokenizer)info.Tokenizer).Pattern);
    }

    /// <summary>"abc" is in the vocabulary but no merge makes it (only "b c" exists): plain BPE gives a + bc, a Llama 3
    /// ("llama-bpe") vocabulary takes the whole word (tokenizers' ignore_merges).</summary>
    [Fact]
    public void LlamaBpe_TakesWholeWordsFromTheVocabulary()
    {
        var plain = GgufTokenizer.Read(Write(TinyGpt2Vocab("gpt-2"), "plain.gguf")).Tokenizer;
        var llama3 = GgufTokenizer.Read(Write(TinyGpt2Vocab("llama-bpe"), "llama3.gguf"));
        Assert.Equal([0, 3], plain.Encode("abc"));
        Assert.Equal([4], llama3.Tokenizer.Encode("abc"));
        Assert.Equal([0, 3, 5, 0, 3], plain.Encode("abc<|end|>abc"));
        Assert.Equal([4, 5, 4], llama3.Tokenizer.Encode("abc<|end|>abc"));
        Assert.True(llama3.AddBosToken); // llama.cpp's default for llama-bpe vocabularies
    }

    [Fact]
    public void PreTokenizerPatterns_SplitAsTheirTokenizersDo()
    {
        static string[] Split(string pattern, string text) => Regex.Matches(text, pattern).Select(m => m.Value).ToArray();
        // SmolLM: every digit alone (Digits individual_digits), GPT-2's regex between them.
        Assert.Equal(["abc", " ", "1", "2", "3", "  ", "4", "x", " y"], Split(ByteLevelBpeTokenizer.SmolLMPattern, "abc 123  4x y"));
        Assert.Equal(["abc", " 123", " ", " 4", "x", " y"], Split(ByteLevelBpeTokenizer.Gpt2Pattern, "abc 123  4x y"));
        // Llama 3: digits in runs of up to three, case-insensitive contractions.
        Assert.Equal(["123", "45", " abc", "'S"], Split(ByteLevelBpeTokenizer.Llama3Pattern, "12345 abc'S"));
        // Qwen2: single digits.
        Assert.Equal(["1", "2", "3", " abc"], Split(ByteLevelBpeTokenizer.Qwen2Pattern, "123 abc"));
    }

    // ---- GGUF versions ----

    [Fact]
    public void Version2Reads_Version1IsRefusedByName()
    {
        byte[] v3 = File.ReadAllBytes(Write(TinyLlamaVocab()));
        byte[] v2 = [.. v3];
        BinaryPrimitives.WriteUInt32LittleEndian(v2.AsSpan(4), 2); // same layout: 64-bit counts and lengths
        File.WriteAllBytes(_dir.File("v2.gguf"), v2);
        using (var g = GgufFile.Open(_dir.File("v2.gguf")))
        {
            Assert.Equal(2u, g.Version);
            Assert.Equal(265, GgufTokenizer.Read(g)!.Tokenizer.VocabSize);
        }
        byte[] v1 = [.. v3];
        BinaryPrimitives.WriteUInt32LittleEndian(v1.AsSpan(4), 1);
        File.WriteAllBytes(_dir.File("v1.gguf"), v1);
        var e = Assert.Throws<CheckpointFormatException>(() => GgufTokenizer.Read(_dir.File("v1.gguf")));
        Assert.Contains("v1.gguf", e.Message);
        Assert.Contains("GGUF version 1 is not supported", e.Message);
        Assert.Contains("32-bit", e.Message);
    }
}
