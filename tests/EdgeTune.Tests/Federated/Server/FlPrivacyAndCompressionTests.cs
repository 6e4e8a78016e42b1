using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated.Server;

public class FlPrivacyAndCompressionTests
{
    [Fact]
    public async Task Int8CompressedUpdatesAggregateCloseToTheTrueMean()
    {
        var layout = FlTestServer.Layout(10, 12);
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f) with { UpdateEncoding = "int8" });
        using var a = s.Client(new ConstantTrainer(0.25f));
        using var b = s.Client(new ConstantTrainer(0.75f));
        await Task.WhenAll(a.RunAsync(), b.RunAsync()).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, s.Server.GlobalVersion);
        Assert.All(s.Server.AcceptedUpdates(1), u => Assert.Equal("int8", u.Encoding));
        Assert.All(s.Server.Global, v => Assert.Equal(0.5f, v, 0.01f));
    }

    [Fact]
    public async Task CentralDpAddsNoiseAndReportsEpsilon()
    {
        var layout = FlTestServer.Layout(10, 12);
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, rounds: 2) with { DpClipNorm = 1.0, DpNoiseMultiplier = 1.0 });
        using var a = s.Client(new ConstantTrainer(0.01f));
        using var b = s.Client(new ConstantTrainer(0.01f));
        await Task.WhenAll(a.RunAsync(), b.RunAsync()).WaitAsync(TimeSpan.FromSeconds(30));
        var rounds = s.Server.Results();
        Assert.Equal(2, rounds.Count);
        Assert.All(rounds, r => Assert.True(r.Epsilon is > 0 and < double.PositiveInfinity));
        Assert.True(rounds[1].Epsilon > rounds[0].Epsilon); // privacy spent accumulates
        Assert.Contains(s.Server.Global, v => Math.Abs(v - 0.02f) > 1e-3); // noise (std z·C/n = 0.5) moved the mean
    }
}
