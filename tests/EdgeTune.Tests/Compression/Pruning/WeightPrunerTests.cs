using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Compression.Pruning;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;

namespace EdgeTune.Tests.Compression.Pruning;

public class WeightPrunerTests
{
    private static DecoderModel Model(ulong seed = 11) => DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed, std: 0.1f);

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.3)]
    [InlineData(0.0)]
    public void MagnitudePerTensorRemovesExactlyTheSmallestShare(double sparsity)
    {
        using var model = Model();
        var mask = WeightPruner.Prune(model, new PruningOptions { Sparsity = sparsity });
        Assert.Equal(2 * 7, mask.Count);
        foreach (var p in PrunableWeights.Of(model))
        {
            var w = p.Weight.Value.ReadOnlySpan<float>();
            var keep = mask.Keep(p.Name);
            long pruned = 0;
            float maxPruned = 0, minKept = float.MaxValue;
            for (int i = 0; i < w.Length; i++)
            {
                if (keep[i] == 0) { pruned++; Assert.Equal(0f, w[i]); }
                else minKept = Math.Min(minKept, Math.Abs(w[i]));
            }
            Assert.Equal((long)Math.Floor(sparsity * w.Length), pruned);
            using var fresh = Model();
            var orig = fresh.Parameters[p.Name].Value.ReadOnlySpan<float>();
            for (int i = 0; i < w.Length; i++) if (keep[i] == 0) maxPruned = Math.Max(maxPruned, Math.Abs(orig[i]));
            if (pruned > 0) Assert.True(maxPruned <= minKept, $"{p.Name}: pruned {maxPruned} > kept {minKept}");
        }
        var (_, total) = PrunableWeights.Measure(model);
        Assert.Equal(mask.PrunedCount, total.Pruned);
    }

    [Fact]
    public void GlobalScopeUsesOneThresholdAcrossTensors()
    {
        using var model = Model();
        using var orig = Model();
        var mask = WeightPruner.Prune(model, new PruningOptions { Sparsity = 0.6, Scope = PruningScope.Global });
        Assert.Equal((long)Math.Floor(0.6 * mask.ElementCount), mask.PrunedCount);
        float maxPruned = 0, minKept = float.MaxValue;
        foreach (string name in mask.Names)
        {
            var o = orig.Parameters[name].Value.ReadOnlySpan<float>();
            var keep = mask.Keep(name);
            for (int i = 0; i < o.Length; i++)
                if (keep[i] == 0) maxPruned = Math.Max(maxPruned, Math.Abs(o[i])); else minKept = Math.Min(minKept, Math.Abs(o[i]));
        }
        Assert.True(maxPruned <= minKept);
        Assert.Contains(mask.PerTensor, t => Math.Abs(t.Sparsity - 0.6) > 0.01); // layers differ under a global threshold
    }

    [Fact]
    public void PerRowPrunesEveryRowToTheTarget()
    {
        using var model = Model();
        var mask = WeightPruner.Prune(model, new PruningOptions { Sparsity = 0.5, Scope = PruningScope.PerRow });
        foreach (var p in PrunableWeights.Of(model))
        {
            var keep = mask.Keep(p.Name);
            for (int r = 0; r < p.Rows; r++)
                Assert.Equal(p.Columns / 2, p.Columns - keep.Slice(r * p.Columns, p.Columns).ToArray().Sum(b => b));
        }
    }

    [Fact]
    public void TwoFourKeepsTheTwoLargestOfEveryGroupOfFour()
    {
        using var model = Model();
        using var orig = Model();
        WeightPruner.Prune(model, PruningOptions.TwoFour());
        int checkedGroups = 0;
        foreach (var p in PrunableWeights.Of(model))
        {
            var w = p.Weight.Value.ToFloatArray();
            var o = orig.Parameters[p.Name].Value.ToFloatArray();
            for (int r = 0; r < p.Rows; r++)
            {
                int g = 0;
                for (; g + 4 <= p.Columns; g += 4)
                {
                    int off = r * p.Columns + g;
                    var zeros = Enumerable.Range(0, 4).Where(i => w[off + i] == 0f).ToArray();
                    Assert.Equal(2, zeros.Length);
                    float minKept = Enumerable.Range(0, 4).Where(i => w[off + i] != 0f).Min(i => Math.Abs(o[off + i]));
                    Assert.All(zeros, z => Assert.True(Math.Abs(o[off + z]) <= minKept));
                    checkedGroups++;
                }
                for (int i = g; i < p.Columns; i++) Assert.Equal(o[r * p.Columns + i], w[r * p.Columns + i]); // short tail stays dense
            }
        }
        Assert.True(checkedGroups > 1000);
    }

    [Fact]
    public void WandaKeepsAHighNormInputChannelThatMagnitudeWouldPrune()
    {
        // Column 0 holds the smallest weights, but its input activations are 20x larger.
        var w = Tensor.From(new float[] { 0.1f, 0.5f, -0.6f, 0.7f, -0.1f, 0.8f, 0.4f, -0.9f }, 2, 4);
        w.Name = "model.layers.0.mlp.down_proj.weight";
        using var param = new Parameter(w.Name, w, trainable: false);
        var p = new PrunableLinear(0, "down_proj", new Linear("model.layers.0.mlp.down_proj", param));
        var norms = ActivationNorms.FromNorms(new Dictionary<string, float[]> { [w.Name] = [20f, 1f, 1f, 1f] });
        var opts = new PruningOptions { Sparsity = 0.5, Scope = PruningScope.PerRow };
        var magnitude = WeightPruner.KeepFlags(WeightPruner.Scores(p, PruningScore.Magnitude, null), 2, 4, opts);
        var wanda = WeightPruner.KeepFlags(WeightPruner.Scores(p, PruningScore.Wanda, norms), 2, 4, opts with { Score = PruningScore.Wanda });
        Assert.Equal(new byte[] { 0, 0, 1, 1, 0, 1, 0, 1 }, magnitude);
        Assert.Equal(new byte[] { 1, 0, 0, 1, 1, 0, 0, 1 }, wanda);
        var wanda24 = WeightPruner.KeepFlags(WeightPruner.Scores(p, PruningScore.Wanda, norms), 2, 4, PruningOptions.TwoFour(PruningScore.Wanda));
        Assert.Equal(1, wanda24[0]);
        Assert.Equal(1, wanda24[4]);
    }

    [Fact]
    public void CollectedNormsMatchTheFirstLayersInputAndLayersAreRestored()
    {
        using var model = Model();
        var before = model.Layers.Select(L => new ILinear[] { L.Proj("self_attn.q_proj"), L.Proj("self_attn.k_proj"), L.Proj("self_attn.v_proj"), L.Proj("self_attn.o_proj"), L.Proj("mlp.gate_proj"), L.Proj("mlp.up_proj"), L.Proj("mlp.down_proj") }).ToArray();
        int[] ids = [1, 5, 9, 52, 0, 17, 33];
        var norms = ActivationNorms.Collect(model, ids, windowLength: 3);
        for (int l = 0; l < model.Layers.Count; l++)
        {
            var L = model.Layers[l];
            Assert.Same(before[l][0], L.Proj("self_attn.q_proj"));
            Assert.Same(before[l][6], L.Proj("mlp.down_proj"));
        }
        Assert.Equal(ids.Length, norms.Tokens);
        // Layer 0's q/k/v read RMSNorm(embedding) with unit norm weights, whatever the window split.
        int c = model.Config.HiddenSize;
        var embed = model.Embed.Value.ReadOnlySpan<float>();
        var expected = new double[c];
        foreach (int id in ids)
        {
            var row = embed.Slice(id * c, c);
            double ms = 0;
            foreach (float f in row) ms += (double)f * f;
            double rstd = 1 / Math.Sqrt(ms / c + model.Config.RmsNormEps);
            for (int j = 0; j < c; j++) expected[j] += row[j] * rstd * row[j] * rstd;
        }
        var q = norms.Of(LlamaNames.Q(0)).ToArray();
        Assert.Equal(q, norms.Of(LlamaNames.K(0)).ToArray());
        for (int j = 0; j < c; j++) Assert.Equal(Math.Sqrt(expected[j]), q[j], 1e-4);
        Assert.Equal(model.Config.IntermediateSize, norms.Of(LlamaNames.Down(1)).Length);
    }

    [Fact]
    public void BadRequestsAreRefusedClearly()
    {
        using var model = Model();
        Assert.Contains("Wanda", Assert.Throws<ArgumentException>(() => WeightPruner.Prune(model, new PruningOptions { Score = PruningScore.Wanda })).Message);
        Assert.Throws<ArgumentException>(() => new PruningOptions { Sparsity = 1.0 }.Validate());
        Assert.Throws<ArgumentException>(() => new PruningOptions { N = 3, M = 2 }.Validate());
        Assert.Throws<ArgumentException>(() => new PruningOptions { Score = PruningScore.Wanda, Scope = PruningScope.Global }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => ActivationNorms.Collect(model, [1, 99], 4));
        model.Parameters[LlamaNames.V(1)].Value.Span<float>()[3] = float.NaN;
        Assert.Contains("v_proj", Assert.Throws<ArgumentException>(() => WeightPruner.Prune(model, new PruningOptions())).Message);
        using var bf16 = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), 1, dtype: DType.BF16);
        Assert.Contains("F32", Assert.Throws<NotSupportedException>(() => PrunableWeights.Of(bf16)).Message);
    }
}
