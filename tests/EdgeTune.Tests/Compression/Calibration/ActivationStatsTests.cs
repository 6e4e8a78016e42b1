using EdgeTune.Nn;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Calibration;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Models;

namespace EdgeTune.Tests.Compression.Calibration;

public class ActivationStatsTests
{
    private static DecoderModel Model() => DecoderModel.CreateRandom(
        Tests.Models.LlamaModelTests.SmallConfig() with { HiddenSize = 64, HeadDim = 16, IntermediateSize = 37 }, 7, std: 0.1f, trainable: true);

    private static readonly int[][] Calib = [[1, 5, 9, 52, 0, 17], [3, 3, 8, 40, 2, 11, 12, 30]];

    [Fact]
    public void CollectRecordsEveryProjectionInputAndLeavesTheModelAsFound()
    {
        using var model = Model();
        var before = model.Layers.SelectMany(l => new ILinear[] { l.Proj("self_attn.q_proj"), l.Proj("self_attn.k_proj"), l.Proj("self_attn.v_proj"), l.Proj("self_attn.o_proj"), l.Proj("mlp.gate_proj"), l.Proj("mlp.up_proj"), l.Proj("mlp.down_proj") }).ToList();
        var logits = Tests.Adapters.AdapterTestUtil.Logits(model, Calib[0]);
        var stats = ActivationStats.Collect(model, Calib);
        Assert.Equal(14, stats.Tokens);
        Assert.Equal(14, stats.Layers.Count);
        var after = model.Layers.SelectMany(l => new ILinear[] { l.Proj("self_attn.q_proj"), l.Proj("self_attn.k_proj"), l.Proj("self_attn.v_proj"), l.Proj("self_attn.o_proj"), l.Proj("mlp.gate_proj"), l.Proj("mlp.up_proj"), l.Proj("mlp.down_proj") }).ToList();
        Assert.True(before.Zip(after).All(p => ReferenceEquals(p.First, p.Second)));
        Assert.Equal(logits, Tests.Adapters.AdapterTestUtil.Logits(model, Calib[0]));

        // q, k, v read the same normed input; gate and up too
        Assert.Equal(stats.MeanSquares("model.layers.1.self_attn.q_proj"), stats.MeanSquares("model.layers.1.self_attn.v_proj"));
        Assert.Equal(stats.MeanSquares("model.layers.0.mlp.gate_proj"), stats.MeanSquares("model.layers.0.mlp.up_proj"));
        Assert.Equal(37, stats.MeanSquares("model.layers.0.mlp.down_proj").Length);
        Assert.All(stats.Layers, n => Assert.All(stats.MeanSquares(n), v => Assert.True(v >= 0 && float.IsFinite(v))));
        Assert.Contains(stats.MeanSquares("model.layers.0.self_attn.o_proj"), v => v > 0);
        Assert.Throws<KeyNotFoundException>(() => stats.MeanSquares("nope"));
    }

    [Fact]
    public void RoundWeightsPlainEqualsFakeQuantAndWeightedRoundsDifferently()
    {
        using var plain = Model();
        using var viaQat = Model();
        using var weighted = Model();
        var stats = ActivationStats.Collect(weighted, Calib);
        Assert.Equal(12, stats.RoundWeights(plain, QuantFormat.Q4_0, weighted: false).Count);
        QatInjector.RoundWeights(viaQat, QuantFormat.Q4_0);
        Assert.Equal(plain.Layers[1].Proj("mlp.up_proj") is EdgeTune.Nn.Linear a ? a.Weight.Value.ToFloatArray() : null,
            viaQat.Layers[1].Proj("mlp.up_proj") is EdgeTune.Nn.Linear b ? b.Weight.Value.ToFloatArray() : null);
        stats.RoundWeights(weighted, QuantFormat.Q4_0);
        Assert.NotEqual(Tests.Adapters.AdapterTestUtil.Logits(plain, Calib[1]), Tests.Adapters.AdapterTestUtil.Logits(weighted, Calib[1]));
    }
}
