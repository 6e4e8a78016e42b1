using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Pruning;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Text;
using EdgeTune.Tests.Models;

namespace EdgeTune.Tests.Compression.Pruning;

public sealed class StructuredPrunerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-prune-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly int[] Ids = [1, 5, 9, 52, 0, 17, 33, 8];

    private static float[] Logits(DecoderModel m) => Logits(m, Ids);

    private static float[] Logits(DecoderModel m, int[] ids)
    {
        var logits = new float[ids.Length * m.VocabSize];
        using var cache = m.CreateCache(ids.Length);
        m.Forward(ids, cache, logits);
        return logits;
    }

    private static DecoderModel Model() => DecoderModel.CreateRandom(LlamaModelTests.SmallConfig() with { NumKeyValueHeads = 2, NumAttentionHeads = 4 }, 5, std: 0.2f);

    private static void AssertClose(float[] a, float[] b, float tol)
    {
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= tol, $"[{i}] {a[i]} vs {b[i]}");
    }

    [Fact]
    public void MlpChannelPruningEqualsTheMaskedOriginal()
    {
        using var model = Model();
        var r = StructuredPruner.Prune(model, new StructuredPruningOptions { MlpFraction = 0.3 });
        using var small = r.Model;
        int inter = model.Config.IntermediateSize, c = model.Config.HiddenSize;
        Assert.Equal(inter - (int)Math.Round(0.3 * inter), small.Config.IntermediateSize);
        Assert.Equal(model.Config.NumAttentionHeads, small.Config.NumAttentionHeads);
        Assert.Equal(model.Parameters.ElementCount - 2 * 3L * c * (inter - small.Config.IntermediateSize), r.ParametersAfter);
        // The masked original: removed channels' gate/up rows zeroed, so SwiGLU gives exactly 0 there.
        for (int l = 0; l < model.Layers.Count; l++)
        {
            var gate = model.Parameters[LlamaNames.Gate(l)].Value.Span<float>();
            var up = model.Parameters[LlamaNames.Up(l)].Value.Span<float>();
            foreach (int j in Enumerable.Range(0, inter).Except(r.KeptChannels[l]))
            {
                gate.Slice(j * c, c).Clear();
                up.Slice(j * c, c).Clear();
            }
        }
        AssertClose(Logits(model), Logits(small), 1e-5f);
    }

    [Fact]
    public void HeadPruningRemovesWholeKvGroupsAndEqualsTheMaskedOriginal()
    {
        using var model = Model();
        var r = StructuredPruner.Prune(model, new StructuredPruningOptions { HeadFraction = 0.5 });
        using var small = r.Model;
        Assert.Equal(1, small.Config.NumKeyValueHeads);
        Assert.Equal(2, small.Config.NumAttentionHeads);
        Assert.Equal(model.Config.HeadDim, small.Config.HeadDim);
        Assert.Equal(model.Config.HiddenSize, small.Config.HiddenSize);
        int d = model.Config.HeadDim, c = model.Config.HiddenSize, gs = 2, qDim = model.Config.QueryDim;
        // Masked original: a removed group's values and its query heads' o_proj columns zeroed contribute nothing.
        for (int l = 0; l < model.Layers.Count; l++)
        {
            Assert.Single(r.KeptKvHeads[l]);
            int g = 1 - r.KeptKvHeads[l][0];
            model.Parameters[LlamaNames.V(l)].Value.Span<float>().Slice(g * d * c, d * c).Clear();
            var o = model.Parameters[LlamaNames.O(l)].Value.Span<float>();
            for (int row = 0; row < c; row++) o.Slice(row * qDim + g * gs * d, gs * d).Clear();
        }
        AssertClose(Logits(model), Logits(small), 1e-5f);
    }

    [Fact]
    public void SmallerModelSavesAndLoadsBackWithTheSameLogits()
    {
        // 259 ids: the byte tokenizer saved beside it must fit the embedding (ModelLoader checks the pair).
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig() with { NumKeyValueHeads = 2, NumAttentionHeads = 4, VocabSize = 259 }, 5, std: 0.2f);
        var r = StructuredPruner.Prune(model, new StructuredPruningOptions { HeadFraction = 0.5, MlpFraction = 0.25 });
        using var small = r.Model;
        string dir = Path.Combine(_dir, "small");
        ModelExporter.ExportSafetensors(small, dir);
        ByteTokenizer.WriteMarker(dir);
        Assert.Contains("\"head_dim\": 6", File.ReadAllText(Path.Combine(dir, "config.json")));
        using var loaded = ModelLoader.Load(dir);
        var back = Assert.IsType<DecoderModel>(loaded.Model);
        Assert.Equal(small.Config.NumAttentionHeads, back.Config.NumAttentionHeads);
        Assert.Equal(small.Config.IntermediateSize, back.Config.IntermediateSize);
        Assert.Equal(r.ParametersAfter, back.Parameters.ElementCount);
        Assert.True(r.ParametersAfter < r.ParametersBefore);
        Assert.Equal(Logits(small), Logits(back));
    }

    [Fact]
    public void ActivationScoresPickTheChannelsThatCarryTheSignal()
    {
        using var model = Model();
        int inter = model.Config.IntermediateSize;
        var norms = ActivationNorms.Collect(model, Ids, 8);
        var byActivation = StructuredPruner.ChannelScores(model, 0, norms);
        var byWeight = StructuredPruner.ChannelScores(model, 0, null);
        Assert.Equal(inter, byActivation.Length);
        Assert.NotEqual(byActivation, byWeight);
        var r = StructuredPruner.Prune(model, new StructuredPruningOptions { MlpFraction = 0.5 }, norms);
        int worstKept = r.KeptChannels[0].MinBy(j => byActivation[j]);
        Assert.All(Enumerable.Range(0, inter).Except(r.KeptChannels[0]), j => Assert.True(byActivation[j] <= byActivation[worstKept]));
        r.Model.Dispose();
        Assert.Throws<ArgumentException>(() => StructuredPruner.Prune(model, new StructuredPruningOptions { HeadFraction = 1.0 }));
    }

    /// <summary>Each family with separate or fused projections (Phi-3's qkv_proj and gate_up_proj): heads and channels pruned
    /// together equal the original with the removed groups' values and the removed channels' gates zeroed.</summary>
    [Theory]
    [InlineData("qwen3")]
    [InlineData("gemma3_text")]
    [InlineData("phi3")]
    public void EveryFamilyPrunesToTheMaskedOriginal(string family)
    {
        int[] ids = [1, 4, 7, 2, 9, 3, 5, 10];
        using var model = DecoderModel.CreateRandom(FamilyTests.Tiny(family) with { NumKeyValueHeads = 2, NumAttentionHeads = 4 }, 5, std: 0.3f);
        var r = StructuredPruner.Prune(model, new StructuredPruningOptions { HeadFraction = 0.5, MlpFraction = 0.3 });
        using var small = r.Model;
        var c = model.Config;
        int d = c.HeadDim, h = c.HiddenSize, inter = c.IntermediateSize, qDim = c.QueryDim, kvDim = c.KeyValueDim;
        Assert.Equal((1, 2, inter - (int)Math.Round(0.3 * inter)), (small.Config.NumKeyValueHeads, small.Config.NumAttentionHeads, small.Config.IntermediateSize));
        bool fused = family == "phi3";
        for (int l = 0; l < model.Layers.Count; l++)
        {
            string p = $"model.layers.{l}.";
            int g = 1 - Assert.Single(r.KeptKvHeads[l]);
            var v = fused ? model.Parameters[p + "self_attn.qkv_proj.weight"].Value.Span<float>()[((qDim + kvDim) * h)..]
                          : model.Parameters[p + "self_attn.v_proj.weight"].Value.Span<float>();
            v.Slice(g * d * h, d * h).Clear();
            var gate = model.Parameters[p + (fused ? "mlp.gate_up_proj.weight" : "mlp.gate_proj.weight")].Value.Span<float>();
            foreach (int j in Enumerable.Range(0, inter).Except(r.KeptChannels[l])) gate.Slice(j * h, h).Clear();
        }
        AssertClose(Logits(model, ids), Logits(small, ids), 1e-5f);
    }
}
