using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Adapters;

public class LoraGradientTests
{
    private static DecoderModel TinyF64(bool bias = false)
    {
        var cfg = Models.LlamaModelTests.SmallConfig(bias ? "qwen2" : "llama", bias) with { HiddenSize = 8, IntermediateSize = 7, HeadDim = 2, VocabSize = 11, NumHiddenLayers = 2 };
        var model = DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, dtype: DType.F64);
        var rng = new Rng(9);
        foreach (var p in model.Parameters.Matching("*norm*").Concat(model.Parameters.Matching("*.bias")))
        {
            var values = p.Value.Span<double>();
            for (int i = 0; i < values.Length; i++) values[i] += 0.3 * rng.NextGaussian();
        }
        return model;
    }

    private static readonly int[] Tokens = [1, 4, 7, 2, 9, 3];
    private static readonly int[] Targets = [4, 7, 2, -100, 3, 10];

    [Fact]
    public void WholeModelGradientsWithLoraOnAllProjectionsMatchFiniteDifferences()
    {
        using var model = TinyF64(bias: true);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 3, UseRsLora = true, TargetModules = LoraConfig.AllLlamaProjections });
        Assert.Equal(DType.F64, adapter.Parameters[0].Value.DType);
        AdapterTestUtil.RandomizeB(adapter, 3, std: 0.5);
        // the base stays frozen (GradCheck asserts frozen parameters get no gradient), and one base kind trains too
        model.Parameters.SetTrainable("model.norm.weight", true);
        var all = adapter.Parameters.Concat(model.Parameters).ToList();
        int n = GradCheck.Check(all, tape => model.Loss(tape, Tokens, Targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8);
        Assert.Equal(adapter.ParameterCount + model.Config.HiddenSize, n);
    }

    [Fact]
    public void DoraExactGradientsMatchFiniteDifferences()
    {
        using var model = TinyF64(bias: true);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, UseDora = true, DoraDetachNorm = false, TargetModules = LoraConfig.AllLlamaProjections });
        AdapterTestUtil.RandomizeB(adapter, 3, std: 0.5);
        GradCheck.Check(adapter.Parameters.Concat(model.Parameters), tape => model.Loss(tape, Tokens, Targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8);
    }

    [Fact]
    public void DoraDetachedNormGivesExactMagnitudeGradientsAndDiffersForAB()
    {
        using var model = TinyF64();
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, UseDora = true, TargetModules = ["q_proj", "down_proj"] });
        AdapterTestUtil.RandomizeB(adapter, 3, std: 0.5);
        // with A and B frozen, detaching the norm changes nothing: m's gradient is exact
        foreach (var m in adapter.Modules) { m.A.Trainable = false; m.B.Trainable = false; }
        GradCheck.Check(adapter.Parameters, tape => model.Loss(tape, Tokens, Targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8);
        // with B trainable, the detached gradient is not the exact one
        foreach (var m in adapter.Modules) m.B.Trainable = true;
        var ex = Assert.ThrowsAny<Exception>(() => GradCheck.Check(adapter.Parameters, tape => model.Loss(tape, Tokens, Targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8));
        Assert.Contains("lora_B", ex.Message);
    }

    [Fact]
    public void ChannelScaleGradientsMatchFiniteDifferences()
    {
        var rng = new Rng(1);
        var x = GradCheck.Param("x", [2, 3, 5], rng);
        var s = GradCheck.Param("s", [5], rng);
        var b = GradCheck.Param("b", [5], rng);
        var w = GradCheck.Param("w", [2, 3, 5], rng, trainable: false);
        GradCheck.Check([x, s, b, w], tape => tape.Sum(tape.Mul(tape.ChannelScale(x.Variable, s.Variable, b.Variable), w.Variable)));
    }

    [Fact]
    public void DropoutScalesKeptElementsAndPassesTheirGradient()
    {
        var rng = new Rng(1);
        var x = GradCheck.Param("x", [40, 50], rng);
        var w = GradCheck.Param("w", [40, 50], rng, trainable: false);
        using var tape = new Tape();
        var y = tape.Dropout(x.Variable, 0.25, new Rng(7));
        double[] yv = y.Value.ReadOnlySpan<double>().ToArray();
        tape.Backward(tape.Sum(tape.Mul(y, w.Variable)));
        var xv = x.Value.ReadOnlySpan<double>();
        var wv = w.Value.ReadOnlySpan<double>();
        var g = x.Grad!.ReadOnlySpan<double>();
        int dropped = 0;
        for (int i = 0; i < yv.Length; i++)
        {
            if (yv[i] == 0) { dropped++; Assert.Equal(0, g[i]); }
            else
            {
                Assert.Equal(xv[i] / 0.75, yv[i], 12);
                Assert.Equal(wv[i] / 0.75, g[i], 12);
            }
        }
        Assert.InRange(dropped, 400, 600); // 25% of 2000
        // same seed, same mask
        using var t2 = new Tape { IsRecording = false };
        Assert.Equal(yv, t2.Dropout(x.Variable, 0.25, new Rng(7)).Value.ReadOnlySpan<double>().ToArray());
    }

    [Fact]
    public void LoraDropoutAppliesOnlyWhileRecording()
    {
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, std: 0.2f);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Dropout = 0.5, TargetModules = LoraConfig.AllLlamaProjections });
        AdapterTestUtil.RandomizeB(adapter, 4);
        int[] t = AdapterTestUtil.Prompt, y = [.. AdapterTestUtil.Prompt.Skip(1), 3];
        double Loss(bool recording)
        {
            using var tape = new Tape { IsRecording = recording };
            return tape.IsRecording ? tape.Backward(model.Loss(tape, t, y, 1, t.Length)) : model.Loss(tape, t, y, 1, t.Length).Item();
        }
        double eval1 = Loss(false), eval2 = Loss(false), train = Loss(true);
        Assert.Equal(eval1, eval2);
        Assert.NotEqual(eval1, train);
    }
}
