using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Adapters;

public class LoraLinearTests
{
    private static readonly LoraConfig All7 = new() { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllLlamaProjections };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroBGivesExactlyTheBaseLogits(bool dora)
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config("qwen2", bias: true), 3, std: 0.2f);
        foreach (var p in model.Parameters.Matching("*.bias")) new Rng(4).FillGaussian(p.Value.Span<float>(), 0, 0.3f);
        float[] before = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        using var adapter = LoraInjector.Apply(model, All7 with { UseDora = dora });
        Assert.IsType<LoraLinear>(model.Layers[1].Proj("mlp.down_proj"));
        Assert.Equal(before, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        AdapterTestUtil.RandomizeB(adapter, 5);
        Assert.True(AdapterTestUtil.MaxAbsDiff(before, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt)) > 1e-3, "a non-zero B must change the logits");
        adapter.Enabled = false;
        Assert.Equal(before, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
    }

    [Fact]
    public void TrainableCountIsExactAndBaseIsFrozen()
    {
        var cfg = AdapterTestUtil.Config();
        using var model = DecoderModel.CreateRandom(cfg, 1, trainable: true);
        var lc = new LoraConfig { Rank = 3, TargetModules = ["q_proj", "*.mlp.down_proj"], LayerRange = (1, 1) };
        long predicted = LoraInjector.CountParameters(model, lc);
        using var adapter = LoraInjector.Apply(model, lc);
        int d = cfg.HiddenSize, q = cfg.QueryDim, h = cfg.IntermediateSize;
        long expected = 3 * (d + q) + 3 * (h + d);
        Assert.Equal(expected, predicted);
        Assert.Equal(expected, adapter.Parameters.TrainableElementCount);
        Assert.Equal(expected, adapter.ParameterCount);
        Assert.Equal(0, model.Parameters.TrainableElementCount);
        Assert.Equal(["model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"], adapter.Layers.Select(l => l.Name));
        Assert.Equal("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight", adapter.Parameters[0].Name);
        Assert.IsType<Linear>(model.Layers[0].Proj("self_attn.q_proj"));
        using var dora = LoraInjector.Apply(model, lc with { UseDora = true }, "dora");
        Assert.Equal(expected + q + d, dora.ParameterCount);
    }

    [Fact]
    public void NoMatchingTargetIsAClearError()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 1);
        var e = Assert.Throws<ArgumentException>(() => LoraInjector.Apply(model, new LoraConfig { TargetModules = ["qkv"] }));
        Assert.Contains("qkv", e.Message);
        Assert.Throws<ArgumentException>(() => LoraInjector.Apply(model, new LoraConfig { Rank = 0 }));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void MergedEqualsUnmergedAndUnmergeRestores(bool dora, bool rsLora)
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, std: 0.2f);
        float[] baseW = model.Layers[0].Proj("self_attn.q_proj") is Linear l0 ? l0.Weight.Value.ToFloatArray() : [];
        using var adapter = LoraInjector.Apply(model, All7 with { UseDora = dora, UseRsLora = rsLora });
        AdapterTestUtil.RandomizeB(adapter, 6);
        float[] unmerged = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        var merged = adapter.Merge();
        Assert.Equal(14, merged.Count);
        Assert.All(merged, m => Assert.IsType<Linear>(m));
        Assert.IsType<Linear>(model.Layers[0].Proj("self_attn.q_proj"));
        Assert.True(adapter.IsMerged);
        double d = AdapterTestUtil.MaxAbsDiff(unmerged, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        Assert.True(d <= 1e-5, $"merged vs unmerged max |Δ| = {d:E3}");
        adapter.Unmerge();
        Assert.IsType<LoraLinear>(model.Layers[0].Proj("self_attn.q_proj"));
        Assert.Equal(unmerged.Length, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt).Length);
        Assert.True(AdapterTestUtil.MaxAbsDiff(unmerged, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt)) <= 1e-5);
        float[] after = ((Linear)((LoraLinear)model.Layers[0].Proj("self_attn.q_proj")).Base).Weight.Value.ToFloatArray();
        Assert.True(AdapterTestUtil.MaxAbsDiff(baseW, after) <= 1e-6);
        adapter.Remove();
        Assert.IsType<Linear>(model.Layers[0].Proj("self_attn.q_proj"));
    }

    [Fact]
    public void MergeRefusesAQuantizedBaseNamingTheLayerAndMergesNothing()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config() with { HiddenSize = 32 }, 3); // Q8_0 rows of 32
        var qProj = (Linear)model.Layers[1].Proj("self_attn.q_proj");
        var q = EdgeTune.Nn.Quantized.QuantizedLinear.Quantize(qProj, EdgeTune.Tensors.Quantized.QuantFormat.Q8_0);
        model.SetProjection("model.layers.1.self_attn.q_proj", q);
        using var adapter = LoraInjector.Apply(model, All7);
        AdapterTestUtil.RandomizeB(adapter, 1);
        float[] before = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        var e = Assert.Throws<InvalidOperationException>(() => adapter.Merge());
        Assert.Contains("model.layers.1.self_attn.q_proj", e.Message);
        Assert.Contains("QuantizedLinear", e.Message);
        Assert.IsType<LoraLinear>(model.Layers[0].Proj("self_attn.q_proj")); // the check runs before any layer is touched
        Assert.False(adapter.Modules[0].Merged);
        Assert.Equal(before, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        q.Storage.Dispose();
    }

    /// <summary>An F16 (or BF16) base weight is widened to an F32 copy when merged; the merged model equals the adapted one.</summary>
    [Fact]
    public void MergeWidensAnF16BaseToF32()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, std: 0.2f);
        const string name = "model.layers.1.mlp.down_proj";
        var down = (Linear)model.Layers[1].Proj("mlp.down_proj");
        var half = new Parameter(down.Weight.Name, down.Weight.Value.To(DType.F16), trainable: false);
        model.Parameters.Replace(half).Dispose();
        model.SetProjection(name, new Linear(down.Name, half));
        using var adapter = LoraInjector.Apply(model, All7);
        AdapterTestUtil.RandomizeB(adapter, 1);
        float[] before = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        adapter.Merge();
        var merged = Assert.IsType<Linear>(model.Layers[1].Proj("mlp.down_proj"));
        Assert.Equal(DType.F32, merged.Weight.Value.DType);
        Assert.Same(merged.Weight, model.Parameters[name + ".weight"]); // exports carry the merged weight
        double d = AdapterTestUtil.MaxAbsDiff(before, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        Assert.True(d <= 1e-5, $"max |Δ| {d:E3}");
    }

    [Fact]
    public void NamedAdaptersSumAndToggleIndependently()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, std: 0.2f);
        float[] baseLogits = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        using var a = LoraInjector.Apply(model, All7, "a");
        using var b = LoraInjector.Apply(model, All7 with { TargetModules = ["q_proj", "v_proj"], InitSeed = 9 }, "b");
        Assert.Equal(2, ((LoraLinear)model.Layers[0].Proj("self_attn.q_proj")).Modules.Count);
        AdapterTestUtil.RandomizeB(a, 1);
        AdapterTestUtil.RandomizeB(b, 2);
        var q = (LoraLinear)model.Layers[1].Proj("self_attn.q_proj");
        int rows = 3, n = q.InFeatures, o = q.OutFeatures;
        var x = new float[rows * n];
        new Rng(8).FillGaussian(x, 0, 1);
        float[] Out() { var y = new float[rows * o]; q.Forward(x, y, rows); return y; }
        float[] both = Out();
        b.Enabled = false;
        float[] onlyA = Out();
        b.Enabled = true; a.Enabled = false;
        float[] onlyB = Out();
        b.Enabled = false;
        float[] none = Out();
        for (int i = 0; i < both.Length; i++) Assert.Equal(both[i], onlyA[i] + onlyB[i] - none[i], 1e-5f);
        Assert.Throws<ArgumentException>(() => LoraInjector.Apply(model, All7, "a"));
        a.Enabled = true; b.Enabled = true;
        b.Remove();
        Assert.Single(((LoraLinear)model.Layers[0].Proj("self_attn.q_proj")).Modules);
        a.Remove();
        Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
    }

    [Fact]
    public void TapeForwardMatchesInferenceAndAccumulates()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, std: 0.2f);
        using var adapter = LoraInjector.Apply(model, All7);
        AdapterTestUtil.RandomizeB(adapter, 4);
        var q = (LoraLinear)model.Layers[0].Proj("self_attn.q_proj");
        int rows = 5;
        var x = new float[rows * q.InFeatures];
        new Rng(2).FillGaussian(x, 0, 1);
        var y = new float[rows * q.OutFeatures];
        y.AsSpan().Fill(1f);
        q.Forward(x, y, rows, accumulate: true);
        using var xt = Tensor.From(x, rows, q.InFeatures);
        using var tape = new Tape { IsRecording = false };
        float[] yt = q.Forward(tape, Variable.Constant(xt)).Value.ToFloatArray();
        for (int i = 0; i < y.Length; i++) Assert.Equal(y[i], yt[i] + 1f, 1e-5f);
    }
}
