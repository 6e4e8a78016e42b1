using System.Text.Json;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

public class TokenizerTests
{
    [SkippableFact]
    public void TinyLlama_Llama2cTestVectors_WithBos_JsonAndModel()
    {
        string dir = TestAssets.Require("tokenizers/tinyllama-1.1b-chat-v1.0");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "llama2c_test_encode_vectors.json")));
        foreach (string file in new[] { "tokenizer.json", "tokenizer.model" })
        {
            var tok = TestTokenizers.Get($"tokenizers/tinyllama-1.1b-chat-v1.0/{file}");
            Assert.True(tok.AddBosByDefault);
            Assert.Equal(1, tok.BosId);
            Assert.Equal(2, tok.EosId);
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                string text = c.GetProperty("text").GetString()!;
                int[] ids = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                Assert.Equal(ids, tok.Encode(text, addBos: true));
                Assert.Equal(text, tok.Decode(ids, skipSpecial: true));
            }
        }
    }

    [SkippableFact]
    public void Qwen_SpecialTokens_SplitOut_And_ParseSpecialOff()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        int imStart = tok.SpecialTokens["<|im_start|>"], imEnd = tok.SpecialTokens["<|im_end|>"];
        Assert.Equal(151644, imStart);
        Assert.Equal(151645, imEnd);
        int[] ids = tok.Encode("<|im_start|>user\nHi<|im_end|>");
        Assert.Equal(imStart, ids[0]);
        Assert.Equal(imEnd, ids[^1]);
        Assert.Equal("<|im_start|>user\nHi<|im_end|>", tok.Decode(ids));
        Assert.Equal("user\nHi", tok.Decode(ids, skipSpecial: true));
        int[] plain = tok.Encode("<|im_start|>", parseSpecial: false);
        Assert.DoesNotContain(imStart, plain);
        Assert.Equal("<|im_start|>", tok.Decode(plain));
    }

    [SkippableFact]
    public void Qwen_NormalizesToNfc()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        Skip.IfNot(ByteLevelBpeTokenizer.NfcAvailable, "runtime in invariant-globalization mode: string.Normalize is a no-op (set DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=0)");
        Assert.Equal(tok.Encode("caf\u00e9"), tok.Encode("cafe\u0301"));
    }

    [SkippableFact]
    public void Phi3_ChatMarkers_AreAddedTokens_RStripEatsNewline()
    {
        var tok = TestTokenizers.Get("tokenizers/phi-3-mini-4k-instruct");
        Assert.Equal(32011, tok.VocabSize); // 32000 pieces + added tokens up to id 32010 (the model pads its embedding to 32064)
        Assert.False(tok.AddBosByDefault); // tokenizer_config add_bos_token=false in this copy
        int user = tok.TokenToId("<|user|>")!.Value, end = tok.TokenToId("<|end|>")!.Value;
        int[] ids = tok.Encode("<|user|>\nHi<|end|>\n<|assistant|>");
        Assert.Equal(user, ids[0]);
        Assert.Contains(end, ids);
        // <|end|> has rstrip=true: the "\n" after it belongs to the token, so <|assistant|> follows directly.
        Assert.Equal(tok.TokenToId("<|assistant|>"), ids[Array.IndexOf(ids, end) + 1]);
    }

    [SkippableFact]
    public void Mistral_MetaspaceFirst_ControlTokens()
    {
        var tok = TestTokenizers.Get("tokenizers/mistral-7b-instruct-v0.3");
        Assert.Equal(32768, tok.VocabSize);
        int inst = tok.SpecialTokens["[INST]"], instEnd = tok.SpecialTokens["[/INST]"];
        int[] ids = tok.Encode("[INST] Hello[/INST]", addBos: true);
        Assert.Equal([1, inst], ids[..2]);
        Assert.Equal(instEnd, ids[^1]);
        // prepend_scheme "first": "Hello" after [INST] gets no extra dummy prefix beyond its own space.
        Assert.Equal(tok.TokenToId("▁Hello"), ids[2]);
        Assert.Equal(4, ids.Length);
        Assert.Equal([tok.TokenToId("▁Hello")!.Value], tok.Encode("Hello"));
    }

    /// <summary>Mistral's tokenizer.model.v3 through our SentencePiece BPE port: same ids as tokenizer.json
    /// on ordinary text, but a leading space follows SentencePiece (dummy "▁" + "▁Hello") where HF's Metaspace
    /// (prepend_scheme "first") does not add a second marker.</summary>
    [SkippableFact]
    public void Mistral_ModelV3_LeadingSpaceFollowsSentencePiece()
    {
        var sp = TestTokenizers.Get("tokenizers/mistral-7b-instruct-v0.3/tokenizer.model.v3");
        var json = TestTokenizers.Get("tokenizers/mistral-7b-instruct-v0.3/tokenizer.json");
        Assert.Equal(32768, sp.VocabSize);
        Assert.Equal(json.Encode("Hello world, how are you?", addBos: true), sp.Encode("Hello world, how are you?", addBos: true));
        Assert.Equal([29473, 23325], sp.Encode(" Hello"));
        Assert.Equal([23325], json.Encode(" Hello"));
    }

    [SkippableFact]
    public void StreamingDecoder_SplitsNoUtf8Char_AndEqualsDecode()
    {
        foreach (string dir in new[] { "tokenizers/tinyllama-1.1b-chat-v1.0", "tokenizers/gpt2", "tokenizers/qwen2.5-0.5b" })
        {
            var tok = TestTokenizers.Get(dir);
            const string text = "Grüße 🚀🦙 我想 naïve\n\ttabs  and 12345";
            int[] ids = tok.Encode(text);
            var stream = tok.CreateStreamingDecoder();
            var parts = ids.Select(stream.Push).ToList();
            Assert.All(parts, p => Assert.DoesNotContain('\uFFFD', p));
            Assert.Equal(tok.Decode(ids), string.Concat(parts) + stream.Flush());
            Assert.Equal(text, tok.Decode(ids));
        }
    }

    [Fact]
    public void StreamingDecoder_IncompleteTail_FlushesReplacement()
    {
        var tok = new SentencePieceBpeTokenizer(
            new Dictionary<string, int> { ["<unk>"] = 0, ["<0xF0>"] = 1, ["<0x9F>"] = 2, ["a"] = 3 }, [], []);
        var stream = tok.CreateStreamingDecoder();
        Assert.Equal("", stream.Push(1));
        Assert.Equal("", stream.Push(2));
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal("\uFFFD", tok.Decode([1, 2]));
    }

    [Fact]
    public void TokenBytes_OutOfRange_Throws()
    {
        var tok = new SentencePieceBpeTokenizer(new Dictionary<string, int> { ["<unk>"] = 0, ["a"] = 1 }, [], [], unkId: 0);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([5]));
        Assert.Contains("[0, 2)", e.Message);
    }

    [Fact]
    public void SentencePieceBpe_MergesByRank_ByteFallback_Unk()
    {
        var vocab = new Dictionary<string, int> { ["<unk>"] = 0, ["▁"] = 1, ["a"] = 2, ["b"] = 3, ["ab"] = 4, ["▁ab"] = 5, ["<0xC3>"] = 6, ["<0xA9>"] = 7 };
        var tok = new SentencePieceBpeTokenizer(vocab, [("a", "b"), ("▁", "ab")], [], unkId: 0);
        Assert.Equal([5, 6, 7], tok.Encode("abé"));
        Assert.Equal("abé", tok.Decode([5, 6, 7]));
        Assert.Equal([5, 1, 0], tok.Encode("ab ẞẞ")); // two unknown chars fuse into one <unk>
    }

    [Fact]
    public void Loader_MissingFolderOrFile_NamesPath()
    {
        string dir = Path.Combine(Path.GetTempPath(), "edgetune-empty-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(dir));
            Assert.Contains(dir, e.Message);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
            var n = Assert.Throws<NotSupportedException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("model.type 'WordPiece'", n.Message);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), "{\"model\": {\"type\": \"BPE\"}}");
            var m = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("model.vocab", m.Message);
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "{\"bos_token\": 5}");
            var c = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("tokenizer_config.json: bos_token", c.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
