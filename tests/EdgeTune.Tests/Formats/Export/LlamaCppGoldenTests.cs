using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Formats.Export;

/// <summary>
/// Exports stories260K + tok512 to GGUF and runs the files in llama.cpp (LLamaSharp 0.30.0, CPU backend, a
/// test-only dependency). All llama.cpp use lives in this one class, whose tests xunit runs one after another.
/// Skips with the reason where the native library cannot load.
/// </summary>
[Collection(LlamaCppCollection.Name)]
public sealed class LlamaCppGoldenTests(ITestOutputHelper output)
{
    private static readonly int[] PromptIds = [1, 403, 407, 261, 378];
    private static (DecoderModel Model, Llama2cTokenizer Tokenizer) LoadStories()
    {
        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        return (DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader)), tok);
    }

    // One probe for every llama.cpp test class: the native log callback can only be set before the library loads.
    private static void RequireNative() => LlamaCpp.RequireNative();

    /// <summary>llama.cpp's logits [T, V] for every prompt position of a GGUF file, evaluated in one batch.</summary>
    private static float[] LlamaCppLogits(string gguf, int[] ids, int vocab)
    {
        // F32 KV cache and no flash attention: llama.cpp's defaults (F16 cache) round k/v to half precision.
        var p = new ModelParams(gguf)
        {
            ContextSize = 64, BatchSize = 64, UBatchSize = 64, Threads = 1, BatchThreads = 1, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, true);
        var r = ctx.Decode(batch);
        Assert.Equal(DecodeResult.Ok, r);
        var all = new float[ids.Length * vocab];
        for (int i = 0; i < ids.Length; i++)
        {
            var row = ctx.NativeHandle.GetLogitsIth(i);
            Assert.Equal(vocab, row.Length);
            row.CopyTo(all.AsSpan(i * vocab, vocab));
        }
        return all;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    [SkippableFact]
    public void F32ExportMatchesOurLogitsAtEveryPosition()
    {
        var (model, tok) = LoadStories();
        using var _ = model;
        RequireNative();
        using var dir = new TempDir();
        string path = dir.File("stories260K-f32.gguf");
        ModelExporter.ExportGguf(model, tok, path, DType.F32);
        int v = model.VocabSize;
        float[] ours = ExportTestUtil.Logits(model, PromptIds);
        float[] theirs = LlamaCppLogits(path, PromptIds, v);
        double worst = 0;
        for (int i = 0; i < PromptIds.Length; i++)
        {
            double d = ExportTestUtil.MaxAbsDiff(ours.AsSpan(i * v, v).ToArray(), theirs.AsSpan(i * v, v).ToArray());
            output.WriteLine($"position {i} (token {PromptIds[i]}): max |Δlogit| = {d:E3}");
            worst = Math.Max(worst, d);
        }
        Assert.True(worst <= 1e-4, $"max |Δlogit| {worst:E3} exceeds 1e-4");
    }

    [SkippableFact]
    public void LlamaCppTokenizesLikeUs()
    {
        var (model, tok) = LoadStories();
        using var _ = model;
        RequireNative();
        using var dir = new TempDir();
        string path = dir.File("stories260K-f32.gguf");
        ModelExporter.ExportGguf(model, tok, path, DType.F32);
        var p = new ModelParams(path) { ContextSize = 64, GpuLayerCount = 0, Threads = 1 };
        using var weights = LLamaWeights.LoadFromFile(p);
        foreach (string text in new[] { "Once upon a time", "Lily and Tom went to the park. They saw a big dog!", "héllo 🙂 wörld" })
        {
            int[] ours = tok.Encode(text, addBos: true);
            int[] theirs = weights.Tokenize(text, true, false, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
            output.WriteLine($"'{text}': ours [{string.Join(",", ours)}] llama.cpp [{string.Join(",", theirs)}]");
            Assert.Equal(ours, theirs);
        }
        Assert.Equal(PromptIds, tok.Encode("Once upon a time", addBos: true));
    }

    [SkippableTheory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.F16)]
    public void QuantizedExportsAgreeOnGreedyTokens(DType dtype)
    {
        var (model, tok) = LoadStories();
        using var _ = model;
        RequireNative();
        using var dir = new TempDir();
        string path = dir.File($"stories260K-{dtype}.gguf");
        ModelExporter.ExportGguf(model, tok, path, dtype);
        int[] ids = tok.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", addBos: true);
        int v = model.VocabSize;
        float[] ours = ExportTestUtil.Logits(model, ids);
        float[] theirs = LlamaCppLogits(path, ids, v);
        int agree = 0;
        double worst = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (ArgMax(ours.AsSpan(i * v, v)) == ArgMax(theirs.AsSpan(i * v, v))) agree++;
            worst = Math.Max(worst, ExportTestUtil.MaxAbsDiff(ours.AsSpan(i * v, v).ToArray(), theirs.AsSpan(i * v, v).ToArray()));
        }
        output.WriteLine($"{dtype}: greedy agreement {agree}/{ids.Length}, max |Δlogit| vs our F32 = {worst:E3}");
        Assert.True(agree >= ids.Length * (dtype == DType.Q4_0 ? 0.6 : 0.8), $"{dtype}: only {agree}/{ids.Length} greedy tokens agree");
        Assert.True(worst > 0, "a lower-precision export should not reproduce F32 bit for bit");
    }

    public static TheoryData<string, string> VocabCases => new()
    {
        { "tokenizers/tinyllama-1.1b-chat-v1.0", "llama" },
        { "tokenizers/qwen2.5-0.5b", "qwen2" },
    };

    private static readonly string[] Texts =
    [
        "Once upon a time, there was a little girl named Lily.",
        "Hello world! 1234 tokens   with  spaces\nand new lines.",
        "héllo wörld — naïve café, 日本語 🙂",
    ];

    /// <summary>Real tokenizer.json (SentencePiece BPE, scores derived from merge ranks) and vocab.json/merges.txt
    /// (byte-level BPE) vocabularies exported into a tiny random model: llama.cpp must tokenize as we do.</summary>
    [SkippableTheory]
    [MemberData(nameof(VocabCases))]
    public void ExportedRealVocabulariesTokenizeLikeUs(string folder, string modelType)
    {
        var tok = TokenizerLoader.Load(TestAssets.Require(folder));
        RequireNative();
        var cfg = ExportTestUtil.Config(modelType, tied: true, bias: modelType == "qwen2", hidden: 32, heads: 4, kvHeads: 2)
            with { VocabSize = tok.VocabSize, NumHiddenLayers = 1, BosTokenId = tok.BosId, EosTokenIds = tok.EosId is int e ? [e] : [] };
        using var model = DecoderModel.CreateRandom(cfg, 1);
        using var dir = new TempDir();
        string path = dir.File("vocab.gguf");
        ModelExporter.ExportGguf(model, tok, path, DType.F16);
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(path) { VocabOnly = true, GpuLayerCount = 0 });
        int same = 0;
        foreach (string text in Texts)
        {
            int[] ours = tok.Encode(text, addBos: false, parseSpecial: false);
            int[] theirs = weights.Tokenize(text, false, false, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();
            output.WriteLine($"{folder} '{text}': ours [{string.Join(",", ours)}] llama.cpp [{string.Join(",", theirs)}]");
            if (ours.SequenceEqual(theirs)) same++;
        }
        Assert.Equal(Texts.Length, same);
    }
}
