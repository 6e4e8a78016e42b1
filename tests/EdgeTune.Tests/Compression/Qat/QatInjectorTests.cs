using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Compression.Qat;

public class QatInjectorTests
{
    // rows of 64 everywhere except down_proj (37 inputs): Q4_0 must skip it
    private static DecoderModel Model(ulong seed = 7, bool trainable = false) => DecoderModel.CreateRandom(
        Tests.Models.LlamaModelTests.SmallConfig() with { HiddenSize = 64, HeadDim = 16, IntermediateSize = 37 }, seed, std: 0.1f, trainable: trainable);

    private static readonly int[] Ids = [1, 5, 9, 52, 0, 17, 33, 8];

    private static double Loss(DecoderModel m, int[] tokens, int[] targets, int b, int t)
    {
        using var tape = new Tape { IsRecording = false };
        return m.Loss(tape, tokens, targets, b, t).Item();
    }

    [Fact]
    public void ApplyWrapsFittingProjectionsAndRemoveRestoresThem()
    {
        using var model = Model();
        var before = model.Layers.SelectMany(l => new ILinear[] { l.Proj("self_attn.q_proj"), l.Proj("self_attn.k_proj"), l.Proj("self_attn.v_proj"), l.Proj("self_attn.o_proj"), l.Proj("mlp.gate_proj"), l.Proj("mlp.up_proj"), l.Proj("mlp.down_proj") }).ToList();
        var r = QatInjector.Apply(model, QuantFormat.Q4_0);
        Assert.Equal(12, r.Wrapped.Count);
        Assert.Equal(["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"], r.Skipped);
        Assert.Contains("down_proj", r.Describe());
        Assert.IsType<QatLinear>(model.Layers[1].Proj("mlp.gate_proj"));
        Assert.IsType<Linear>(model.Layers[1].Proj("mlp.down_proj"));
        Assert.Throws<InvalidOperationException>(() => QatInjector.Apply(model, QuantFormat.Q4_0));
        Assert.Equal(12, QatInjector.Remove(model));
        var after = model.Layers.SelectMany(l => new ILinear[] { l.Proj("self_attn.q_proj"), l.Proj("self_attn.k_proj"), l.Proj("self_attn.v_proj"), l.Proj("self_attn.o_proj"), l.Proj("mlp.gate_proj"), l.Proj("mlp.up_proj"), l.Proj("mlp.down_proj") }).ToList();
        Assert.True(before.Zip(after).All(p => ReferenceEquals(p.First, p.Second)));
        Assert.Equal(0, QatInjector.Remove(model));
    }

    [Theory]
    [InlineData(QuantFormat.Q4_0)]
    [InlineData(QuantFormat.Q8_0)]
    [InlineData(QuantFormat.NF4)]
    public void AQatModelComputesWhatItsRoundedCopyComputes(QuantFormat format)
    {
        using var qat = Model();
        using var rounded = Model();
        using var plain = Model();
        QatInjector.Apply(qat, format);
        Assert.Equal(12, QatInjector.RoundWeights(rounded, format).Count);
        var a = AdapterLogits(qat);
        Assert.Equal(AdapterLogits(rounded), a);
        Assert.NotEqual(AdapterLogits(plain), a);
        int[] targets = [.. Ids.Skip(1), 3];
        Assert.Equal(Loss(rounded, Ids, targets, 2, 4), Loss(qat, Ids, targets, 2, 4));
    }

    private static float[] AdapterLogits(DecoderModel m) => Tests.Adapters.AdapterTestUtil.Logits(m, Ids);

    [Fact]
    public void TrainingUnderQatLowersTheLossOfTheQuantizedModel()
    {
        using var model = Model(seed: 3, trainable: true);
        QatInjector.Apply(model, QuantFormat.Q4_0);
        // a repeating pattern to learn
        int b = 2, t = 16;
        var tokens = Enumerable.Range(0, b * t).Select(i => (i * 7) % 11 + 1).ToArray();
        var targets = Enumerable.Range(0, b * t).Select(i => ((i + 1) * 7) % 11 + 1).ToArray();
        double first = Loss(model, tokens, targets, b, t);
        using var opt = new AdamW(model.Parameters, new AdamWOptions { LearningRate = 3e-3, WeightDecay = 0 });
        for (int step = 0; step < 40; step++)
        {
            opt.ZeroGrad();
            using var tape = new Tape();
            tape.Backward(model.Loss(tape, tokens, targets, b, t));
            opt.Step();
        }
        double trained = Loss(model, tokens, targets, b, t);
        Assert.True(trained < 0.7 * first, $"loss {first} -> {trained}");

        // taking QAT off and rounding the trained F32 weights gives exactly the loss training saw
        QatInjector.Remove(model);
        double f32 = Loss(model, tokens, targets, b, t);
        QatInjector.RoundWeights(model, QuantFormat.Q4_0);
        Assert.Equal(trained, Loss(model, tokens, targets, b, t));
        Assert.NotEqual(trained, f32);
    }

    [Fact]
    public void LoraOverQatTrainsOnlyTheAdapterAgainstTheRoundedBase()
    {
        using var model = Model();
        using var rounded = Model();
        QatInjector.Apply(model, QuantFormat.Q8_0);
        QatInjector.RoundWeights(rounded, QuantFormat.Q8_0);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllLlamaProjections });
        var lora = Assert.IsType<LoraLinear>(model.Layers[0].Proj("self_attn.q_proj"));
        Assert.IsType<QatLinear>(lora.Base);
        Assert.Equal(AdapterLogits(rounded), AdapterLogits(model)); // B starts at zero
        int[] targets = [.. Ids.Skip(1), 3];
        using (var tape = new Tape()) tape.Backward(model.Loss(tape, Ids, targets, 1, Ids.Length));
        Assert.All(model.Parameters, p => Assert.Null(p.Grad));
        Assert.Contains(adapter.Parameters, p => p.Grad is { } g && g.ToFloatArray().Any(v => v != 0));
    }

    [Fact]
    public void WholeModelGradientsThroughFakeQuantizedProjectionsMatchFiniteDifferences()
    {
        // Int8 rows fit any width; the projection weights are frozen (their STE gradient is no derivative),
        // everything around them (embedding, norms) is checked in double
        var cfg = Tests.Models.LlamaModelTests.SmallConfig() with { HiddenSize = 8, IntermediateSize = 7, HeadDim = 2, VocabSize = 11, NumHiddenLayers = 2 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, dtype: DType.F64);
        var rng = new Rng(9);
        foreach (var p in model.Parameters.Matching("*norm*"))
        {
            var v = p.Value.Span<double>();
            for (int i = 0; i < v.Length; i++) v[i] += 0.3 * rng.NextGaussian();
        }
        QatInjector.Apply(model, QuantFormat.Int8);
        foreach (var p in model.Parameters.Matching("*norm*").Append(model.Embed)) p.Trainable = true;
        int n = GradCheck.Check(model.Parameters, tape => model.Loss(tape, [1, 4, 7, 2, 9, 3], [4, 7, 2, -100, 3, 10], 2, 3), rtol: 1e-5, atol: 1e-8);
        Assert.Equal(cfg.VocabSize * cfg.HiddenSize + (2 * cfg.NumHiddenLayers + 1) * cfg.HiddenSize, n);
    }
}
