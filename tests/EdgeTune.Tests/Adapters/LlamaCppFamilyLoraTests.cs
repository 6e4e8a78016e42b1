using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Text;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Adapters;

/// <summary>
/// Per family (llama, qwen3, gemma3_text, phi3): a LoRA GGUF written by <see cref="LoraGgufExporter"/> and applied by
/// llama.cpp (LLamaSharp 0.30.0, CPU, F32) on top of the exported base model gives the logits of our merged model.
/// Small random models over the stories260K tok512 vocabulary, in configs llama.cpp accepts.
/// </summary>
[Collection(LlamaCppCollection.Name)]
public sealed class LlamaCppFamilyLoraTests(ITestOutputHelper output)
{
    internal static readonly int[] PromptIds = [1, 403, 407, 261, 378, 300, 12, 499, 77];

    public static IEnumerable<object[]> Families => Models.FamilyTests.Families;

    /// <summary>A family's tiny config widened to llama.cpp-friendly shapes and the 512-id vocabulary of tok512; Gemma 3
    /// with the layer pattern, local rope base and attention scale llama.cpp fixes (every 6th layer global, 10000,
    /// head_dim).</summary>
    internal static HfConfig Config(string family)
    {
        var cfg = Models.FamilyTests.Tiny(family, layers: 2) with
        {
            HiddenSize = 32, IntermediateSize = 40, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 8, VocabSize = 512,
            MaxPositionEmbeddings = 64,
        };
        return family switch
        {
            "qwen3" => cfg with { HeadDim = 12 }, // head_dim ≠ hidden / heads
            "gemma3_text" => (cfg with { NumHiddenLayers = 7, SlidingWindow = 4 }).WithRaw(
                ("layer_types", null), ("rope_local_base_freq", 10000.0), ("query_pre_attn_scalar", 8.0)),
            _ => cfg,
        };
    }

    /// <summary>A random model of <paramref name="cfg"/> with norms away from their init (so a misplaced norm shows).
    /// <paramref name="quietFfn"/> (Gemma 3) scales the post-FFN norm by 1e-3 so that the FFN adds little to the residual
    /// stream: llama.cpp's CPU GELU reads a half-precision table (inputs and outputs rounded to F16, relative error up to
    /// ~5e-4), which Gemma's post-FFN norm turns into logit differences of ~1e-3 whatever the weights.</summary>
    internal static DecoderModel RandomModel(HfConfig cfg, ulong seed, bool quietFfn = false)
    {
        var model = DecoderModel.CreateRandom(cfg, seed, std: 0.1f);
        var rng = new Rng(seed + 1);
        foreach (var p in model.Parameters.Matching("*norm*"))
        {
            var v = p.Value.Span<float>();
            for (int i = 0; i < v.Length; i++) v[i] += 0.2f * (float)rng.NextGaussian();
            if (quietFfn && p.Name.Contains("post_feedforward_layernorm", StringComparison.Ordinal))
                for (int i = 0; i < v.Length; i++) v[i] *= 1e-3f;
        }
        return model;
    }

    /// <summary>Base GGUF and LoRA GGUF of <paramref name="model"/> with <paramref name="config"/> (B random), then the
    /// adapter merged. Returns the logits of the base and merged model (ours) and the files.</summary>
    private static (float[] BaseOurs, float[] MergedOurs, LoraAdapter Adapter) ExportBaseAndLora(DecoderModel model, LoraConfig config, string basePath, string loraPath)
    {
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        ModelExporter.ExportGguf(model, tok, basePath, DType.F32);
        float[] baseOurs = AdapterTestUtil.Logits(model, PromptIds);
        var adapter = LoraInjector.Apply(model, config);
        AdapterTestUtil.RandomizeB(adapter, 23, std: 0.2);
        LoraGgufExporter.Export(adapter, model, loraPath);
        adapter.Merge();
        return (baseOurs, AdapterTestUtil.Logits(model, PromptIds), adapter);
    }

    internal static readonly LoraConfig Lora = new() { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllProjections, InitSeed = 5 };

    /// <summary>Per-module ranks and alphas with rsLoRA: llama.cpp's single alpha cannot express them, so the exporter
    /// folds each module's own scale into its lora_b.</summary>
    internal static readonly LoraConfig PatternLora = Lora with
    {
        UseRsLora = true,
        RankPattern = new Dictionary<string, int> { ["o_proj"] = 2, ["down_proj"] = 6, ["layers\\.1\\.self_attn\\.qkv_proj"] = 3 },
        AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 3, ["qkv_proj"] = 5, ["gate_up_proj"] = 11, ["model.layers.0.mlp.up_proj"] = 20 },
    };

    public static IEnumerable<object[]> FamiliesAndPatterns =>
        Families.SelectMany(f => new[] { new object[] { f[0], false }, [f[0], true] });

    [SkippableTheory]
    [MemberData(nameof(FamiliesAndPatterns))]
    public void LoraGgufInLlamaCppMatchesOurMergedModel(string family, bool perModuleRanks)
    {
        TestAssets.Require("stories260K/tok512.bin");
        LlamaCpp.RequireNative();
        using var model = RandomModel(Config(family), 31, quietFfn: family == "gemma3_text");
        using var dir = new TempDir();
        string basePath = dir.File("base.gguf"), loraPath = dir.File("lora.gguf");
        var (baseOurs, ours, adapter) = ExportBaseAndLora(model, perModuleRanks ? PatternLora : Lora, basePath, loraPath);
        using var _ = adapter;
        if (perModuleRanks)
            Assert.True(adapter.Modules.Select(m => m.Scale * m.Rank).Distinct().Count() > 1, "the modules should need different llama.cpp alphas");
        int v = model.VocabSize;
        double baseDiff = AdapterTestUtil.MaxAbsDiff(baseOurs, LlamaCpp.Logits(basePath, PromptIds, v));
        double effect = AdapterTestUtil.MaxAbsDiff(baseOurs, ours);
        double d = AdapterTestUtil.MaxAbsDiff(ours, LlamaCpp.Logits(basePath, PromptIds, v, loraPath));
        output.WriteLine($"{family}{(perModuleRanks ? " (per-module r/α, rsLoRA)" : "")}: max |Δlogit| ours vs llama.cpp: base {baseDiff:E3}, merged vs base+LoRA {d:E3} (adapter effect {effect:E3}, {adapter.Modules.Count} modules)");
        Assert.True(effect > 0.05, $"{family}: the adapter should move the logits (max |Δ| vs base {effect:E3})");
        Assert.True(baseDiff <= 1e-4, $"{family}: the base GGUF already disagrees with llama.cpp (max |Δlogit| {baseDiff:E3})");
        Assert.True(d <= 1e-4, $"{family}: max |Δlogit| llama.cpp+LoRA vs our merged model {d:E3} exceeds 1e-4");
    }

    /// <summary>Full-strength models (Gemma 3's FFN included): llama.cpp running base + LoRA GGUF equals llama.cpp running our
    /// merged model's GGUF, so both sides share llama.cpp's arithmetic (its F16 GELU table included); our own logits are
    /// printed for reference.</summary>
    [SkippableTheory]
    [MemberData(nameof(Families))]
    public void LoraGgufInLlamaCppMatchesTheMergedExportInLlamaCpp(string family)
    {
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        LlamaCpp.RequireNative();
        using var model = RandomModel(Config(family), 37);
        using var dir = new TempDir();
        string basePath = dir.File("base.gguf"), loraPath = dir.File("lora.gguf"), mergedPath = dir.File("merged.gguf");
        var (_, ours, adapter) = ExportBaseAndLora(model, Lora, basePath, loraPath);
        using var _ = adapter;
        ModelExporter.ExportGguf(model, tok, mergedPath, DType.F32);
        int v = model.VocabSize;
        float[] withLora = LlamaCpp.Logits(basePath, PromptIds, v, loraPath);
        float[] merged = LlamaCpp.Logits(mergedPath, PromptIds, v);
        double d = AdapterTestUtil.MaxAbsDiff(withLora, merged);
        output.WriteLine($"{family}: max |Δlogit| llama.cpp base+LoRA vs llama.cpp merged {d:E3}; ours vs llama.cpp merged {AdapterTestUtil.MaxAbsDiff(ours, merged):E3}");
        Assert.True(d <= 1e-4, $"{family}: llama.cpp base+LoRA vs merged export max |Δlogit| {d:E3} exceeds 1e-4");
    }
}
