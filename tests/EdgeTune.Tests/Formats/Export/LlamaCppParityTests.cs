using System.Diagnostics;
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
/// Cross-implementation parity with llama.cpp (LLamaSharp 0.30.0, CPU): random models with the real per-layer
/// shapes of SmolLM2-135M and Qwen2.5-0.5B, stories260K greedy generation, and GGUF files written by
/// llama.cpp's quantizer. Shares the "llama.cpp" collection with <see cref="LlamaCppGoldenTests"/> so that the
/// native library is never driven from two tests at once.
/// </summary>
[Collection(LlamaCppCollection.Name)]
public sealed class LlamaCppParityTests(ITestOutputHelper output)
{
    /// <summary>Layers kept from the real depth (30 for SmolLM2-135M, 24 for Qwen2.5-0.5B): every layer has the
    /// same shapes, so four exercise the per-layer code as the full stack does at a suite-friendly cost.</summary>
    /// <remarks>Set EDGETUNE_PARITY_FULL_DEPTH=1 to run the real depths (slower, ~2.5 GB of files).</remarks>
    private static readonly bool FullDepth = Environment.GetEnvironmentVariable("EDGETUNE_PARITY_FULL_DEPTH") == "1";
    private const int ReducedLayers = 4;
    private const int PromptLength = 64;

    private static (DecoderModel Model, Llama2cTokenizer Tokenizer) LoadStories()
    {
        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        return (DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader)), tok);
    }

    /// <summary>SmolLM2-135M's published config (hidden 576, 9 heads over 3 kv heads of 64, FFN 1536, vocab 49152,
    /// rope_theta 100000, tied embeddings, rms eps 1e-5) with <see cref="ReducedLayers"/> layers.</summary>
    internal static HfConfig SmolLm2Config(int layers) => new()
    {
        ModelType = "llama",
        HiddenSize = 576,
        IntermediateSize = 1536,
        NumHiddenLayers = layers,
        NumAttentionHeads = 9,
        NumKeyValueHeads = 3,
        HeadDim = 64,
        VocabSize = 49152,
        RmsNormEps = 1e-5,
        RopeTheta = 100000,
        MaxPositionEmbeddings = 2048,
        TieWordEmbeddings = true,
        BosTokenId = 1,
        EosTokenIds = [2],
    };

    private static int[] RandomIds(int n, int vocab, ulong seed)
    {
        var rng = new Rng(seed);
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.NextInt(vocab);
        return ids;
    }

    private void ExpectSameLogits(DecoderModel model, ITokenizer tok, string label)
    {
        var sw = Stopwatch.StartNew();
        using var dir = new TempDir();
        string path = dir.File($"{label}.gguf");
        ModelExporter.ExportGguf(model, tok, path, DType.F32);
        double export = sw.Elapsed.TotalSeconds;
        int v = model.VocabSize;
        int[] ids = RandomIds(PromptLength, v, 7);
        float[] ours = ExportTestUtil.Logits(model, ids);
        double oursS = sw.Elapsed.TotalSeconds - export;
        float[] theirs = LlamaCpp.Logits(path, ids, v);
        double theirsS = sw.Elapsed.TotalSeconds - export - oursS;
        double worst = 0, scale = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs((double)ours[i] - theirs[i]));
            scale = Math.Max(scale, Math.Abs(ours[i]));
        }
        output.WriteLine($"{label}: {ids.Length} positions x {v} logits, max |logit| {scale:F3}, max |Δlogit| {worst:E3}; " +
                         $"export {export:F1}s, EdgeTune {oursS:F1}s, llama.cpp {theirsS:F1}s");
        Assert.True(scale > 1e-2, "logits are all ~0: the comparison would be vacuous");
        Assert.True(worst <= 1e-4, $"{label}: max |Δlogit| {worst:E3} exceeds 1e-4");
    }

    /// <summary>SmolLM2-135M per-layer shapes, 4 of its 30 layers (reduced for suite time), random N(0, 0.02) weights.</summary>
    [SkippableFact]
    public void SmolLm2Shaped4LayersF32LogitsMatchLlamaCpp()
    {
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin")); // 512 ids, padded to 49152
        LlamaCpp.RequireNative();
        using var model = DecoderModel.CreateRandom(SmolLm2Config(FullDepth ? 30 : ReducedLayers), 11, std: 0.02f);
        ExpectSameLogits(model, tok, $"smollm2-135m-shaped-{model.Config.NumHiddenLayers}-layers");
    }

    /// <summary>Qwen2.5-0.5B's config.json (q/k/v bias, tied, theta 1e6) with 4 of its 24 layers (reduced for suite
    /// time); its own byte-level BPE vocabulary goes into the GGUF metadata.</summary>
    [SkippableFact]
    public void Qwen25Shaped4LayersF32LogitsMatchLlamaCpp()
    {
        string folder = TestAssets.Require("tokenizers/qwen2.5-0.5b");
        LlamaCpp.RequireNative();
        var tok = TokenizerLoader.Load(folder);
        var cfg = HfConfig.Load(Path.Combine(folder, "config.json")) with { MaxPositionEmbeddings = 2048 };
        if (!FullDepth) cfg = cfg with { NumHiddenLayers = ReducedLayers };
        Assert.True(cfg.AttentionBias, "qwen2 config should imply q/k/v bias");
        using var model = DecoderModel.CreateRandom(cfg, 12, std: 0.02f);
        var rng = new Rng(13);
        foreach (var p in model.Parameters) // non-zero biases, so that a dropped or mis-permuted bias shows
            if (p.Name.EndsWith("bias", StringComparison.Ordinal)) rng.FillGaussian(p.Value.Span<float>(), 0f, 0.1f);
        ExpectSameLogits(model, tok, $"qwen2.5-0.5b-shaped-{model.Config.NumHiddenLayers}-layers");
    }

    [SkippableFact]
    public void Stories260KGreedyGenerationMatchesLlamaCpp()
    {
        var (model, tok) = LoadStories();
        using var _ = model;
        LlamaCpp.RequireNative();
        using var dir = new TempDir();
        string path = dir.File("stories260K-f32.gguf");
        ModelExporter.ExportGguf(model, tok, path, DType.F32);
        int[] prompt = tok.Encode("Once upon a time", addBos: true);
        const int n = 60;
        int[] ours = GreedyOurs(model, prompt, n);
        int[] theirs = LlamaCpp.Greedy(path, prompt, n, model.VocabSize);
        output.WriteLine($"EdgeTune : {tok.Decode(ours)}");
        output.WriteLine($"llama.cpp: {tok.Decode(theirs)}");
        Assert.Equal(ours, theirs);
    }

    private static int[] GreedyOurs(DecoderModel model, int[] prompt, int n)
    {
        using var cache = model.CreateCache(prompt.Length + n);
        var logits = new float[model.VocabSize];
        model.Forward(prompt, cache, logits);
        var result = new int[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = LlamaCpp.ArgMax(logits);
            if (i + 1 < n) model.Forward([result[i]], cache, logits);
        }
        return result;
    }

    /// <summary>llama.cpp quantizes our F32 export of stories260K; EdgeTune loads the file (dequantizing to F32),
    /// predicts the same greedy next tokens as llama.cpp on it, and its reference quantizer writes the same blocks.</summary>
    [SkippableTheory]
    [InlineData(DType.Q8_0, LLamaFtype.MOSTLY_Q8_0)]
    [InlineData(DType.Q4_0, LLamaFtype.MOSTLY_Q4_0)]
    public void LlamaCppQuantizedGgufLoadsAndAgrees(DType dtype, LLamaFtype ftype)
    {
        var (stories, tok) = LoadStories();
        using var _ = stories;
        LlamaCpp.RequireNative();
        // llama.cpp cannot block-quantize stories260K's FFN width 172 (not a multiple of 32) and has no fallback for
        // Q8_0/Q4_0, so the FFN is zero-padded to 192: the padded units contribute silu(0)·0 = 0, same function.
        using var model = PadFfn(stories, 192);
        using var dir = new TempDir();
        string f32 = dir.File("stories260K-f32.gguf"), quant = dir.File($"stories260K-{dtype}-llamacpp.gguf");
        ModelExporter.ExportGguf(model, tok, f32, DType.F32);
        LlamaCpp.TakeLog();
        bool ok = LLamaQuantizer.Quantize(f32, quant, ftype, nthread: 1);
        string log = LlamaCpp.TakeLog();
        Assert.True(ok, $"llama.cpp failed to quantize to {ftype}: {log[Math.Max(0, log.Length - 2000)..]}");

        // 1. our reference quantizer against the blocks llama.cpp wrote, tensor by tensor
        int compared = 0, identical = 0;
        using (var src = GgufFile.Open(f32))
        using (var q = GgufFile.Open(quant))
        {
            foreach (var info in q.TensorInfos)
            {
                if (info.DType is not (DType.Q8_0 or DType.Q4_0) || info.DType is not DType t) continue;
                using var theirs = q.GetTensor(info.Name);
                using var ours = GgufQuant.Quantize(src.GetTensor(info.Name), t);
                compared++;
                int blockBytes = t == DType.Q8_0 ? GgufQuant.Q8_0BlockBytes : GgufQuant.Q4_0BlockBytes;
                int diff = CountDifferentBlocks(ours.Bytes, theirs.Bytes, blockBytes);
                if (diff == 0) identical++;
                else output.WriteLine($"{info.Name} ({t}): {diff} of {ours.Bytes.Length / blockBytes} blocks differ");
            }
            output.WriteLine($"{dtype}: {q.TensorInfos.Count} tensors, types [{string.Join(", ", q.TensorInfos.GroupBy(t => t.Type).Select(g => $"{g.Key}×{g.Count()}"))}]; " +
                             $"{identical}/{compared} block-quantized tensors bit-identical to GgufQuant");
        }
        Assert.True(compared > 0, $"llama.cpp wrote no block-quantized tensor");
        Assert.Equal(compared, identical);

        // 2. EdgeTune loads llama.cpp's file and agrees with llama.cpp on it
        using var reader = CheckpointReader.Open(quant);
        using var loaded = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
        int[] ids = tok.Encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the park.", addBos: true);
        int v = loaded.VocabSize;
        float[] ours2 = ExportTestUtil.Logits(loaded, ids);
        float[] theirs2 = LlamaCpp.Logits(quant, ids, v);
        int agree = 0;
        double worst = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            if (LlamaCpp.ArgMax(ours2.AsSpan(i * v, v)) == LlamaCpp.ArgMax(theirs2.AsSpan(i * v, v))) agree++;
            worst = Math.Max(worst, ExportTestUtil.MaxAbsDiff(ours2.AsSpan(i * v, v).ToArray(), theirs2.AsSpan(i * v, v).ToArray()));
        }
        output.WriteLine($"{dtype} (llama.cpp-written): greedy next-token agreement {agree}/{ids.Length}, max |Δlogit| {worst:E3}");
        // llama.cpp also quantizes the activations to 8 bits in its Q8_0/Q4_0 dot products, so logits differ slightly
        Assert.True(agree >= ids.Length - 2, $"{dtype}: only {agree}/{ids.Length} greedy next tokens agree");
    }

    /// <summary>The same model with its FFN widened to <paramref name="width"/> by zero units.</summary>
    private static DecoderModel PadFfn(DecoderModel m, int width)
    {
        var padded = DecoderModel.CreateRandom(m.Config with { IntermediateSize = width }, 1, m.RopeStyle);
        var byName = m.Parameters.ToDictionary(p => p.Name, p => p.Value);
        int f = m.Config.IntermediateSize;
        foreach (var p in padded.Parameters)
        {
            var dst = p.Value.Span<float>();
            var src = byName[p.Name].ReadOnlySpan<float>();
            dst.Clear();
            if (p.Value.ShapeString == byName[p.Name].ShapeString) src.CopyTo(dst);
            else if (p.Value.Dim(0) == width) src.CopyTo(dst); // gate/up [F, C]: rows F.. stay zero
            else // down [C, F]
                for (int r = 0; r < p.Value.Dim(0); r++) src.Slice(r * f, f).CopyTo(dst.Slice(r * width, f));
        }
        return padded;
    }

    private static int CountDifferentBlocks(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, int blockBytes)
    {
        Assert.Equal(a.Length, b.Length);
        int n = 0;
        for (int i = 0; i < a.Length; i += blockBytes)
            if (!a.Slice(i, blockBytes).SequenceEqual(b.Slice(i, blockBytes))) n++;
        return n;
    }
}
