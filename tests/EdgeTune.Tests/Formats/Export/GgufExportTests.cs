using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;
using static EdgeTune.Tests.Formats.Export.ExportTestUtil;

namespace EdgeTune.Tests.Formats.Export;

/// <summary>GGUF export read back by our own reader (no llama.cpp): the llama.cpp comparison is in <see cref="LlamaCppGoldenTests"/>.</summary>
public class GgufExportTests
{
    private static Llama2cTokenizer TinyTokenizer(int n)
    {
        var pieces = new string[n];
        pieces[0] = "<unk>"; pieces[1] = "\n<s>\n"; pieces[2] = "\n</s>\n";
        for (int i = 0; i < 256; i++) pieces[3 + i] = $"<0x{i:X2}>";
        for (int i = 259; i < n; i++) pieces[i] = i % 2 == 0 ? $" w{i}" : $"w{i}";
        var scores = Enumerable.Range(0, n).Select(i => i < 259 ? 0f : -(float)(i - 259)).ToArray();
        return new Llama2cTokenizer(pieces, scores, 8);
    }

    [Theory]
    [InlineData("llama", false, false, RopeStyle.HalfSplit)]
    [InlineData("llama", true, false, RopeStyle.Interleaved)]
    [InlineData("qwen2", true, true, RopeStyle.HalfSplit)]
    [InlineData("qwen2", false, true, RopeStyle.Interleaved)]
    public void F32RoundTripGivesTheSameLogits(string type, bool tied, bool bias, RopeStyle style)
    {
        using var dir = new TempDir();
        var cfg = Config(type, tied, bias) with { VocabSize = 300 };
        using var model = Random(cfg, 21, style);
        ModelExporter.ExportGguf(model, TinyTokenizer(300), dir.File("m.gguf"));
        using var back = LoadBack(dir.File("m.gguf"));
        Assert.Equal(GgufLlama.RopeLayoutOf(type), back.RopeStyle);
        Assert.Equal(type, back.Config.ModelType);
        Assert.Equal(tied, back.TiedHead);
        Assert.Equal(bias, back.Config.AttentionBias);
        double d = MaxAbsDiff(Logits(model, Prompt), Logits(back, Prompt));
        // Same layout: the very same numbers. Permuted q/k rows only reorder sums inside q·k.
        if (style == GgufLlama.RopeLayoutOf(type)) Assert.Equal(0.0, d);
        else Assert.True(d <= 1e-5, $"max |Δlogit| {d:E3}");
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    public void LowerPrecisionExportsHoldTheRoundedWeightsAndKeepNormsF32(DType dtype)
    {
        using var dir = new TempDir();
        var cfg = Config("llama", hidden: 64, heads: 4, kvHeads: 2) with { VocabSize = 300 };
        using var model = Random(cfg, 8, RopeStyle.Interleaved);
        ModelExporter.ExportGguf(model, TinyTokenizer(300), dir.File("m.gguf"), dtype);
        using (var g = GgufFile.Open(dir.File("m.gguf")))
        {
            var types = g.TensorInfos.ToDictionary(t => t.Name, t => t.DType);
            Assert.Equal(DType.F32, types["blk.0.attn_norm.weight"]);
            Assert.Equal(DType.F32, types["output_norm.weight"]);
            Assert.Equal(dtype, types["blk.1.attn_q.weight"]);
            Assert.Equal(dtype, types["token_embd.weight"]);
            // ffn_down rows hold 37 values: not a multiple of 32, so block types fall back to F16.
            Assert.Equal(dtype.IsBlockQuantized() ? DType.F16 : dtype, types["blk.0.ffn_down.weight"]);
        }
        using var back = LoadBack(dir.File("m.gguf"));
        // What the file should hold: each matrix rounded through its storage type.
        using var rounded = Random(cfg, 8, RopeStyle.Interleaved);
        foreach (var p in rounded.Parameters)
        {
            DType stored = ModelExporter.GgufTypeFor(p.Value, dtype);
            if (stored == DType.F32) continue;
            using var q = stored.IsBlockQuantized() ? GgufQuant.Quantize(p.Value, stored) : p.Value.To(stored);
            using var f = GgufQuant.ToFloat32(q);
            f.Span<float>().CopyTo(p.Value.Span<float>());
        }
        float[] expected = Logits(rounded, Prompt);
        Assert.True(MaxAbsDiff(expected, Logits(back, Prompt)) <= 1e-4);
        Assert.True(MaxAbsDiff(expected, Logits(model, Prompt)) > 1e-4); // the rounding is visible
    }

    [Fact]
    public void Llama2cVocabularyIsWrittenInSentencePieceForm()
    {
        using var dir = new TempDir();
        using var model = Random(Config() with { VocabSize = 300 }, 4);
        ModelExporter.ExportGguf(model, TinyTokenizer(290), dir.File("m.gguf"));
        using var g = GgufFile.Open(dir.File("m.gguf"));
        var md = g.Metadata;
        Assert.Equal("llama", md["tokenizer.ggml.model"].AsString());
        string[] tokens = md["tokenizer.ggml.tokens"].AsStringArray();
        int[] types = md["tokenizer.ggml.token_type"].AsArray<int>();
        float[] scores = md["tokenizer.ggml.scores"].AsArray<float>();
        Assert.Equal(300, tokens.Length);
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal("<0xFF>", tokens[258]);
        Assert.Equal("\u2581w260", tokens[260]);
        Assert.Equal("w261", tokens[261]);
        Assert.Equal("[PAD295]", tokens[295]);
        Assert.Equal([2, 3, 3, 6], types[..4]);
        Assert.Equal(6, types[258]);
        Assert.Equal(1, types[260]);
        Assert.Equal(5, types[295]);
        Assert.Equal(-1f, scores[260]);
        Assert.Equal(1, md["tokenizer.ggml.bos_token_id"].AsInt32());
        Assert.Equal(2, md["tokenizer.ggml.eos_token_id"].AsInt32());
        Assert.Equal(0, md["tokenizer.ggml.unknown_token_id"].AsInt32());
        Assert.True(md["tokenizer.ggml.add_bos_token"].AsBool());
        Assert.Equal("llama", md["general.architecture"].AsString());
        Assert.Equal(300, md["llama.vocab_size"].AsInt32());
    }

    [SkippableFact]
    public void ByteLevelTokenizerIsWrittenAsGpt2()
    {
        var tok = TokenizerLoader.Load(TestAssets.Require("tokenizers/qwen2.5-0.5b"));
        var bl = Assert.IsType<ByteLevelBpeTokenizer>(tok);
        var md = GgufTokenizerMetadata.For(tok, tok.VocabSize + 3).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("gpt2", md["tokenizer.ggml.model"].AsString());
        Assert.Equal("qwen2", md["tokenizer.ggml.pre"].AsString());
        string[] tokens = md["tokenizer.ggml.tokens"].AsStringArray();
        Assert.Equal(tok.VocabSize + 3, tokens.Length);
        Assert.Equal(bl.Merges.Count, md["tokenizer.ggml.merges"].ArrayLength);
        int[] types = md["tokenizer.ggml.token_type"].AsArray<int>();
        int imStart = tok.SpecialTokens["<|im_start|>"];
        Assert.Equal("<|im_start|>", tokens[imStart]);
        Assert.Equal(3, types[imStart]);
        Assert.Equal(1, types[tok.TokenToId("Ġthe")!.Value]);
        Assert.Equal(5, types[^1]);
        Assert.Throws<ArgumentException>(() => GgufTokenizerMetadata.For(tok, tok.VocabSize - 1));
    }

    [SkippableFact]
    public void SentencePieceJsonScoresFollowMergeRanks()
    {
        var tok = Assert.IsType<SentencePieceBpeTokenizer>(TokenizerLoader.Load(TestAssets.Require("tokenizers/tinyllama-1.1b-chat-v1.0")));
        var md = GgufTokenizerMetadata.For(tok, tok.VocabSize).ToDictionary(kv => kv.Key, kv => kv.Value);
        string[] tokens = md["tokenizer.ggml.tokens"].AsStringArray();
        float[] scores = md["tokenizer.ggml.scores"].AsArray<float>();
        int[] types = md["tokenizer.ggml.token_type"].AsArray<int>();
        Assert.Equal(["<unk>", "<s>", "</s>", "<0x00>"], tokens[..4]);
        Assert.Equal([2, 3, 3, 6], types[..4]);
        // Llama 2's first merge is "▁ t" → "▁t" (id 260).
        Assert.Equal("\u2581t", tokens[260]);
        Assert.Equal(0f, scores[260]);
        Assert.True(scores[260] > scores[261] && scores[261] > scores[1000]);
    }
}
