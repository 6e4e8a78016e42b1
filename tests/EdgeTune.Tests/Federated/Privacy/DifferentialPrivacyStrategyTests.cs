using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Privacy;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Privacy;

public class DifferentialPrivacyStrategyTests
{
    [Fact]
    public void ClipScalesDownOnlyLongVectors()
    {
        float[] a = [3f, 4f];
        Assert.Equal(5, GaussianMechanism.ClipL2(a, 1), 6);
        Assert.Equal(0.6f, a[0], 6);
        Assert.Equal(0.8f, a[1], 6);
        float[] b = [0.3f, 0.4f];
        GaussianMechanism.ClipL2(b, 1);
        Assert.Equal([0.3f, 0.4f], b);
    }

    [Fact]
    public void CentralModeAddsNoiseOfStdZCToTheSum()
    {
        const int n = 20000, clients = 4;
        double z = 0.5, c = 2;
        var dp = new DifferentialPrivacyStrategy(new FedAvgStrategy(), new DifferentialPrivacyOptions { Mode = DpMode.Central, ClipNorm = c, NoiseMultiplier = z, Seed = 3 });
        var updates = Enumerable.Range(0, clients).Select(i => new ClientUpdate($"c{i}", new float[n], 1)).ToList();
        updates[0].Delta[0] = 1000; // clipped to norm C
        var next = dp.Aggregate(1, new float[n], updates);
        Assert.Equal(1, dp.LastClippedCount);
        // mean noise std = z·C / clients
        double var_ = 0;
        for (int i = 1; i < n; i++) var_ += (double)next[i] * next[i];
        double std = Math.Sqrt(var_ / (n - 1));
        Assert.InRange(std, 0.97 * z * c / clients, 1.03 * z * c / clients);
        Assert.InRange(next[0], c / clients - 0.05, c / clients + 0.05);
        Assert.True(dp.CurrentEpsilon > 0);
        Assert.Equal(1, dp.Accountant.Rounds);

        // deterministic: same seed and round → same output
        var again = new DifferentialPrivacyStrategy(new FedAvgStrategy(), dp.Options).Aggregate(1, new float[n], updates);
        Assert.Equal(next, again);
    }

    [Fact]
    public void LocalModeOnlyClipsAndAveragesOnTheServer()
    {
        var dp = new DifferentialPrivacyStrategy(new FedAvgStrategy(), new DifferentialPrivacyOptions { Mode = DpMode.Local, ClipNorm = 1, NoiseMultiplier = 1 });
        var next = dp.Aggregate(1, [0f, 0f], [new ClientUpdate("a", [0.5f, 0f], 1), new ClientUpdate("b", [0f, 3f], 9)]);
        Assert.Equal([0.25f, 0.5f], next);

        var u = new float[10000];
        u[0] = 100;
        GaussianMechanism.PrivatizeLocally(u, 1, 2, new Rng(1));
        double s = 0;
        for (int i = 1; i < u.Length; i++) s += (double)u[i] * u[i];
        Assert.InRange(Math.Sqrt(s / (u.Length - 1)), 1.94, 2.06);
    }

    [Fact]
    public void EpsilonGrowsPerRoundAndStateRoundTrips()
    {
        var o = new DifferentialPrivacyOptions { Mode = DpMode.Central, NoiseMultiplier = 1.0, SamplingRate = 0.1 };
        var dp = new DifferentialPrivacyStrategy(new FedAdamStrategy(), o);
        var g = new float[3];
        double last = 0;
        for (int r = 1; r <= 3; r++)
        {
            g = dp.Aggregate(r, g, [new ClientUpdate("a", [0.1f, 0.2f, 0.3f], 1)]);
            Assert.True(dp.CurrentEpsilon > last);
            last = dp.CurrentEpsilon;
        }
        var copy = new DifferentialPrivacyStrategy(new FedAdamStrategy(), o);
        copy.LoadState(dp.SaveState()!);
        Assert.Equal(dp.CurrentEpsilon, copy.CurrentEpsilon);
        Assert.Equal(dp.Aggregate(4, g, [new ClientUpdate("a", [0.1f, 0.2f, 0.3f], 1)]), copy.Aggregate(4, g, [new ClientUpdate("a", [0.1f, 0.2f, 0.3f], 1)]));
        Assert.Equal("dp-fedadam", dp.Name);
    }

    [Fact]
    public void CentralNoiseOnASecureSumMatchesTheStrategy()
    {
        var o = new DifferentialPrivacyOptions { Mode = DpMode.Central, ClipNorm = 0.5, NoiseMultiplier = 0.8, Seed = 11 };
        var updates = new List<ClientUpdate> { new("a", [0.1f, -0.2f, 0.05f], 1), new("b", [0.3f, 0.1f, 0f], 1) };
        var viaStrategy = new DifferentialPrivacyStrategy(new FedAvgStrategy(), o).Aggregate(7, new float[3], updates);
        var sum = new double[3];
        foreach (var u in updates) for (int i = 0; i < 3; i++) sum[i] += u.Delta[i];
        GaussianMechanism.AddCentralNoise(sum, o, 7);
        for (int i = 0; i < 3; i++) Assert.Equal(viaStrategy[i], (float)(sum[i] / 2));
    }
}
