using EdgeTune.Federated.Client;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated.Server;

public class FlServerTests
{
    [Fact]
    public async Task TwoClientsRunTwoRoundsOfFedAvgOverGrpc()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 2, rounds: 2));
        using var a = s.Client(new ConstantTrainer(1f));
        using var b = s.Client(new ConstantTrainer(3f));
        var results = await Task.WhenAll(a.RunAsync(), b.RunAsync()).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(results, r => Assert.Equal(2, r.Accepted));
        Assert.All(results, r => Assert.Equal(2, r.LastGlobalVersion));
        Assert.Equal(2, s.Server.GlobalVersion);
        Assert.All(s.Server.Global, v => Assert.Equal(4f, v)); // two rounds of mean(1, 3)
        var rounds = s.Server.Results();
        Assert.Equal([1, 2], rounds.Select(r => r.Round));
        Assert.All(rounds, r => { Assert.Equal(2, r.Accepted); Assert.Equal(0, r.Rejected); Assert.Equal(2.0, r.MeanTrainLoss, 6); Assert.Equal("all-delivered", r.ClosedBy); });
        Assert.True(s.Server.Completion.IsCompleted);
    }

    [Fact]
    public async Task StrategyStateAndVersionsSurviveARestart()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 1, rounds: 2));
        using var a = s.Client(new ConstantTrainer(0.5f));
        await a.EnrolAsync();
        var task = await a.GetTaskAsync();
        Assert.Equal(TaskKind.Train, task.Kind);
        var payload = EdgeTune.Federated.UpdateCompression.UpdateCodec.EncodeFloat32(Enumerable.Repeat(0.5f, (int)layout.TotalLength).ToArray());
        var reply = await a.UploadPayloadAsync(FlClient.Header(task.Round, task.GlobalVersion, payload, 5), payload);
        Assert.Equal(UploadStatus.Accepted, reply.Status);
        await WaitFor(() => s.Server.GlobalVersion == 1);
        await s.RestartAsync(f => FlTestServer.Options(f, minClients: 1, rounds: 2));
        Assert.Equal(1, s.Server.GlobalVersion);
        Assert.All(s.Server.Global, v => Assert.Equal(0.5f, v));
        var next = await a.GetTaskAsync(); // the same identity works after the restart
        Assert.Equal(2, next.Round);
        Assert.Equal(1, next.GlobalVersion);
    }

    internal static async Task WaitFor(Func<bool> condition, int timeoutMs = 10_000)
    {
        var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            if (DateTime.UtcNow > until) throw new TimeoutException("condition not met in time");
            await Task.Delay(20);
        }
    }
}
