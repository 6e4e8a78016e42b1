using EdgeTune.Autograd;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Aggregation;

public class StrategyTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(5, 257)]
    public void FedAvgIsTheExampleWeightedMeanExactly(int clients, int length)
    {
        var rng = new Rng(42);
        var global = new float[length];
        rng.FillGaussian(global, 0, 1);
        var updates = Enumerable.Range(0, clients).Select(c =>
        {
            var d = new float[length];
            rng.FillGaussian(d, 0, 0.1f);
            return new ClientUpdate($"c{c}", d, 1 + rng.NextInt(100));
        }).ToList();
        var next = new FedAvgStrategy().Aggregate(1, global, updates);
        double total = updates.Sum(u => (double)u.NumExamples);
        for (int i = 0; i < length; i++)
        {
            double s = 0;
            foreach (var u in updates) s += u.NumExamples * (double)u.Delta[i];
            Assert.Equal((float)(global[i] + s / total), next[i]);
        }
    }

    [Fact]
    public void AggregateDoesNotModifyInputs()
    {
        var updates = AggregationTestData.Updates(9, 5, 0, 3, out _);
        var copies = updates.Select(u => (float[])u.Delta.Clone()).ToList();
        var global = new float[9];
        foreach (var name in StrategyFactory.Names)
            StrategyFactory.Create(name).Aggregate(1, global, updates);
        for (int c = 0; c < updates.Count; c++) Assert.Equal(copies[c], updates[c].Delta);
        Assert.All(global, g => Assert.Equal(0f, g));
    }

    [Theory]
    [InlineData("median", 2)]
    [InlineData("trimmed-mean", 2)]
    [InlineData("krum", 2)]
    [InlineData("multi-krum", 2)]
    public void RobustStrategiesTolerateFPoisonedUpdates(string name, int f)
    {
        var updates = AggregationTestData.Updates(33, 7, f, 11, out var center);
        var strategy = StrategyFactory.Create(name, new StrategyOptions { TrimBeta = 0.25, Byzantine = f, MultiKrumSelect = 3 });
        var next = strategy.Aggregate(1, new float[33], updates);
        for (int i = 0; i < 33; i++) Assert.InRange(next[i], center[i] - 0.05f, center[i] + 0.05f);

        var avg = new FedAvgStrategy().Aggregate(1, new float[33], updates);
        Assert.True(avg.Max() > 1e5f, "FedAvg is expected to follow the poisoned updates");
    }

    [Fact]
    public void MedianOfEvenCountAveragesTheMiddlePair()
    {
        var u = new[] { 1f, 4f, 2f, 100f }.Select((v, i) => new ClientUpdate($"c{i}", [v], 1)).ToList();
        Assert.Equal(3f, new MedianStrategy().Aggregate(1, [0f], u)[0]);
        Assert.Equal(3f, new TrimmedMeanStrategy(0.25).Aggregate(1, [0f], u)[0]);
    }

    [Fact]
    public void KrumPicksTheClusterMember()
    {
        var u = new List<ClientUpdate>
        {
            new("a", [0f, 0f], 1), new("b", [0.1f, 0f], 1), new("c", [0f, 0.1f], 1),
            new("d", [0.05f, 0.05f], 1), new("evil", [50f, 50f], 1),
        };
        var krum = new KrumStrategy(1);
        int best = krum.SelectIndices(u)[0];
        Assert.NotEqual(4, best);
        Assert.Equal(u[best].Delta, krum.Aggregate(1, [0f, 0f], u));
        Assert.Throws<ArgumentException>(() => new KrumStrategy(3).Aggregate(1, [0f, 0f], u));
    }

    [Fact]
    public void FedAdamFirstStepMatchesTheHandComputedRule()
    {
        var o = new ServerOptimizerOptions { Eta = 0.1, Beta1 = 0.9, Beta2 = 0.99, Tau = 1e-3 };
        var s = new FedAdamStrategy(o);
        var next = s.Aggregate(1, [1f, 2f], [new ClientUpdate("a", [0.5f, -1f], 1), new ClientUpdate("b", [1.5f, -3f], 3)]);
        // Δ = [1.25, −2.5]; m = 0.1Δ; v = 0.99τ² + 0.01Δ²; x += η·m/(√v + τ)
        foreach (var (i, x0, d) in new[] { (0, 1.0, 1.25), (1, 2.0, -2.5) })
        {
            double v = 0.99 * 1e-6 + 0.01 * d * d;
            Assert.Equal((float)(x0 + 0.1 * 0.1 * d / (Math.Sqrt(v) + 1e-3)), next[i]);
        }
    }

    [Theory]
    [InlineData("fedadam")]
    [InlineData("fedyogi")]
    public void AdaptiveStateRoundTripsExactly(string name)
    {
        var rounds = Enumerable.Range(0, 4).Select(r => AggregationTestData.Updates(17, 3, 0, (ulong)r, out _)).ToList();
        var a = StrategyFactory.Create(name);
        var global = new float[17];
        for (int r = 0; r < 2; r++) global = a.Aggregate(r + 1, global, rounds[r]);
        var state = a.SaveState()!;
        var b = StrategyFactory.Create(name);
        b.LoadState(state);
        Assert.Equal(state, b.SaveState());
        var ga = global; var gb = (float[])global.Clone();
        for (int r = 2; r < 4; r++) { ga = a.Aggregate(r + 1, ga, rounds[r]); gb = b.Aggregate(r + 1, gb, rounds[r]); }
        Assert.Equal(ga, gb);
        Assert.Equal(4, ((AdaptiveServerStrategy)b).Steps);

        var bad = (byte[])state.Clone(); bad[0] ^= 1;
        Assert.Throws<FormatException>(() => StrategyFactory.Create(name).LoadState(bad));
        Assert.Throws<FormatException>(() => StrategyFactory.Create(name).LoadState(state[..^1]));
    }

    [Fact]
    public void FedYogiDiffersFromFedAdam()
    {
        var u = AggregationTestData.Updates(5, 3, 0, 9, out _);
        var x = new FedAdamStrategy().Aggregate(1, new float[5], u);
        var y = new FedYogiStrategy().Aggregate(1, new float[5], u);
        Assert.NotEqual(x, y);
    }

    [Fact]
    public void FedProxSendsMuAndProximalTermAddsTheGradient()
    {
        var fit = StrategyFactory.Create("fedprox", new StrategyOptions { ProximalMu = 0.5 }).ConfigureFit(3, new FitInstructions());
        Assert.Equal(0.5, fit.ProximalMu);
        var grad = new[] { 1f, 1f };
        ProximalTerm.AddTo(grad, [2f, -1f], [1f, 1f], 0.5f);
        Assert.Equal(new[] { 1.5f, 0f }, grad);
        Assert.Throws<ShapeException>(() => ProximalTerm.AddTo(grad, [1f], [1f, 1f], 0.5f));
    }

    [Fact]
    public void BadInputsRaiseClearExceptions()
    {
        foreach (var name in StrategyFactory.Names)
        {
            var s = StrategyFactory.Create(name);
            var e = Assert.ThrowsAny<ArgumentException>(() => s.Aggregate(2, new float[3], []));
            Assert.Contains("no client updates", e.Message);
            var m = Assert.Throws<ShapeException>(() => s.Aggregate(2, new float[3], [new ClientUpdate("x", new float[4], 1)]));
            Assert.Contains("'x'", m.Message);
        }
        Assert.Throws<ArgumentException>(() => new FedAvgStrategy().Aggregate(1, new float[1], [new ClientUpdate("z", [1f], 0)]));
        Assert.Throws<ArgumentException>(() => StrategyFactory.Create("nope"));
    }

    [Fact]
    public void ProximalTermAppliesToTrainableParameters()
    {
        using var w = new Parameter("lora_a", Tensor.From(new[] { 1f, 2f, 3f }, 3));
        using var frozen = new Parameter("base", Tensor.From(new[] { 5f }, 1), trainable: false);
        var prox = ProximalTerm.Snapshot(0.1, [w, frozen]);
        w.Value.Span<float>()[0] = 2f;  // a local step moved w[0] by +1
        w.Grad!.Span<float>()[0] = 0.5f;
        prox.Apply([w, frozen]);
        Assert.Equal(new[] { 0.6f, 0f, 0f }, w.Grad.ReadOnlySpan<float>().ToArray());
        Assert.Throws<ArgumentException>(() => new ProximalTerm(0.1, new Dictionary<string, float[]>()).Apply([w]));
    }
}
