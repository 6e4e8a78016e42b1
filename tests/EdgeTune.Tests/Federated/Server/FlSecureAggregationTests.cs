using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;

namespace EdgeTune.Tests.Federated.Server;

public class FlSecureAggregationTests
{
    private static readonly float[] Values = [0.137f, -0.25f, 0.5f, 0.031f, -0.75f];
    private static readonly long[] Examples = [10, 20, 7, 33, 5];

    /// <summary>Dropped clients are noticed after the liveness timeout (they stay silent longer, see <see cref="Client"/>);
    /// without dropouts a generous timeout keeps a slow test machine from losing a healthy client.</summary>
    private static FlServerOptions SecAgg(string folder, int? threshold = null, double liveness = 1.5) => FlTestServer.Options(folder, minClients: 5, rounds: 1) with
    {
        SecureAggregation = true, SecAggThreshold = threshold,
        LivenessTimeout = TimeSpan.FromSeconds(liveness), SecAggStageTimeout = TimeSpan.FromSeconds(20),
    };

    private static FlClient Client(FlTestServer s, int i, FlDropout drop = FlDropout.None) =>
        new(new FlClientOptions
        {
            Server = s.Url, Token = FlTestServer.Token, RetryFor = TimeSpan.FromSeconds(20), HeartbeatInterval = TimeSpan.FromMilliseconds(200),
            DisplayName = "c" + i, EvaluateGlobal = false, Dropout = _ => drop, DropoutSilence = TimeSpan.FromSeconds(3),
        }, new ConstantTrainer(Values[i], Examples[i]));

    /// <summary>Plain FedAvg of the given clients' constant updates from a zero global.</summary>
    private static float[] FedAvgOf(UpdateLayout layout, IEnumerable<int> clients) =>
        new FedAvgStrategy().Aggregate(1, new float[layout.TotalLength],
            clients.Select(i => new ClientUpdate("c" + i, Enumerable.Repeat(Values[i], (int)layout.TotalLength).ToArray(), Examples[i])).ToList());

    private static async Task<FlClientSummary[]> RunAll(FlTestServer s, params FlDropout[] drops)
    {
        var clients = Enumerable.Range(0, 5).Select(i => Client(s, i, drops.Length > i ? drops[i] : FlDropout.None)).ToList();
        try { return await Task.WhenAll(clients.Select(c => c.RunAsync())).WaitAsync(TimeSpan.FromSeconds(60)); }
        finally { foreach (var c in clients) c.Dispose(); }
    }

    [Fact]
    public async Task FiveClientsGiveTheFedAvgGlobalWithinFixedPointPrecision()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => SecAgg(f, liveness: 10));
        var summaries = await RunAll(s);
        Assert.All(summaries, r => Assert.Equal(1, r.Accepted));
        Assert.Equal(1, s.Server.GlobalVersion);
        var expected = FedAvgOf(layout, Enumerable.Range(0, 5));
        var global = s.Server.Global;
        for (int i = 0; i < global.Length; i++) Assert.Equal(expected[i], global[i], 1e-4f);
        var result = Assert.Single(s.Server.Results());
        Assert.Null(result.Failure);
        Assert.Equal(5, result.Accepted);
        Assert.Equal("secure-aggregation", result.ClosedBy);
        Assert.Equal(Values.Zip(Examples, (v, n) => (double)v * n).Sum() / Examples.Sum(), result.MeanTrainLoss, 5);
        // the server stored only masked vectors: none decodes to a client's update
        foreach (var u in s.Server.AcceptedUpdates(1))
        {
            Assert.Equal(FlServer.MaskedEncoding, u.Encoding);
            var masked = EdgeTune.Federated.SecureAggregation.SecAggMaskedInput.FromBytes(u.Payload);
            Assert.DoesNotContain(masked.Masked, v => Math.Abs(unchecked((long)v) / 65536.0) < 1e6); // plain values would be below 100
        }
    }

    [Fact]
    public async Task DropoutsBeforeAndAfterMaskingStillGiveTheMaskedClientsSum()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => SecAgg(f, threshold: 3));
        // client 3 leaves before masking (its pair masks are rebuilt from shares), client 4 after masking (its input counts)
        await RunAll(s, FlDropout.None, FlDropout.None, FlDropout.None, FlDropout.BeforeMasking, FlDropout.AfterMasking);
        var result = Assert.Single(s.Server.Results());
        Assert.Null(result.Failure);
        Assert.Equal(4, result.Accepted);
        Assert.Equal(1, s.Server.GlobalVersion);
        var expected = FedAvgOf(layout, [0, 1, 2, 4]);
        var global = s.Server.Global;
        for (int i = 0; i < global.Length; i++) Assert.Equal(expected[i], global[i], 1e-4f);
    }

    [Fact]
    public async Task TooFewSurvivorsFailTheRoundAndKeepTheGlobal()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => SecAgg(f, threshold: 4));
        var summaries = await RunAll(s, FlDropout.None, FlDropout.None, FlDropout.None, FlDropout.BeforeMasking, FlDropout.AfterMasking);
        var result = Assert.Single(s.Server.Results());
        Assert.Equal("secagg-failed", result.ClosedBy);
        Assert.Contains("threshold is 4", result.Failure);
        Assert.Equal(0, result.Version);
        Assert.Equal(0, s.Server.GlobalVersion);
        Assert.All(s.Server.Global, v => Assert.Equal(0f, v));
        Assert.All(summaries, r => Assert.Equal(0, r.LastGlobalVersion));
    }

    [Fact]
    public async Task ARestartMidRoundFailsThatRoundCleanly()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 2, rounds: 2) with { SecureAggregation = true });
        using var a = s.Client(new ConstantTrainer(1f));
        await a.EnrolAsync();
        using var b = s.Client(new ConstantTrainer(1f));
        await b.EnrolAsync();
        Assert.Equal(TaskKind.Train, (await a.GetTaskAsync()).Kind);
        await s.RestartAsync(f => FlTestServer.Options(f, minClients: 2, rounds: 2) with { SecureAggregation = true });
        var failed = Assert.Single(s.Server.Results());
        Assert.Equal(1, failed.Round);
        Assert.Contains("restarted", failed.Failure);
        Assert.Equal(0, s.Server.GlobalVersion);
        var next = await a.GetTaskAsync();
        Assert.Equal(2, next.Round); // the next round runs
        Assert.True(next.SecureAggregation.Enabled);
    }

    [Fact]
    public async Task PlainUpdatesAndClientToClientRelayAreRefused()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 2) with { SecureAggregation = true });
        using var a = s.Client(new ConstantTrainer(1f));
        await a.EnrolAsync();
        using var b = s.Client(new ConstantTrainer(1f));
        await b.EnrolAsync();
        var task = await a.GetTaskAsync();
        Assert.Equal(TaskKind.Train, task.Kind);
        Assert.Equal(2, task.SecureAggregation.Threshold);
        var payload = EdgeTune.Federated.UpdateCompression.UpdateCodec.EncodeFloat32(new float[layout.TotalLength]);
        var reply = await a.UploadPayloadAsync(FlClient.Header(task.Round, task.GlobalVersion, payload, 5), payload);
        Assert.Equal(UploadStatus.Rejected, reply.Status);
        Assert.Contains("masked", reply.Reason);
        Assert.Equal(0, s.Server.AcceptedCount(task.Round));
        var e = Assert.Throws<EdgeTune.Federated.Server.FlRejectedException>(() => s.Server.SendSecAgg(a.ClientId!,
            new SecAggMessage { Round = task.Round, Stage = 1, To = "*", Payload = Google.Protobuf.ByteString.CopyFrom(1, 2, 3) }));
        Assert.Contains("server", e.Message);
    }

    [Theory]
    [InlineData("median")]
    [InlineData("krum")]
    [InlineData("trimmed-mean")]
    public void OptionsRefuseStrategiesThatNeedIndividualUpdates(string strategy)
    {
        var o = FlTestServer.Options("state") with { SecureAggregation = true, Strategy = strategy };
        var e = Assert.Throws<ArgumentException>(() => o.Validate());
        Assert.Contains(strategy, e.Message);
        Assert.Contains("secure aggregation", e.Message);
        (o with { Strategy = "fedavg" }).Validate();
    }

    [Fact]
    public void OptionsRefuseCentralDpWithSecureAggregation()
    {
        var o = FlTestServer.Options("state") with { SecureAggregation = true, DpClipNorm = 1, DpNoiseMultiplier = 1 };
        Assert.Throws<ArgumentException>(() => o.Validate());
        (o with { DpLocal = true }).Validate();
    }
}
