using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Server.Sharding;
using EdgeTune.Federated.UpdateCompression;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Server;

/// <summary>
/// The round's close merges the shards' partial sums with what the store accepted: an update acknowledged to its client
/// is in the new global exactly once whether its shard kept it, lost it (its process died), handed it twice, or handed a
/// partial naming an upload the store never accepted.
/// </summary>
public sealed class FlShardingTests : IDisposable
{
    private const int Clients = 6;
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "edgetune-flshard-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }

    /// <summary>Real shards (three, in memory) whose partials the test can tamper with before the close sees them.</summary>
    private sealed class TamperingShards(IStreamingAggregator strategy, int length, Func<IReadOnlyList<ShardPartial>, IReadOnlyList<ShardPartial>> tamper) : IRoundShards
    {
        private readonly LocalRoundShards _inner = new(strategy, length, 3);
        public int Count => _inner.Count;
        public void Fold(int round, ShardUpdate update) => _inner.Fold(round, update);
        public IReadOnlyList<ShardPartial> Collect(int round) => tamper(_inner.Collect(round));
        public long RetainedBytes => _inner.RetainedBytes;
        public int Folded => _inner.Folded;
    }

    private FlServer NewServer(UpdateLayout layout, string strategy, Func<IReadOnlyList<ShardPartial>, IReadOnlyList<ShardPartial>> tamper) =>
        new(FlTestServer.Options(_folder, minClients: Clients, rounds: 1) with { Strategy = strategy }, layout, new float[layout.TotalLength],
            evaluate: null, strategy: null, telemetry: null, shards: (s, n) => new TamperingShards(s, n, tamper));

    private static (string Id, float[] Delta, long Examples) Upload(FlServer server, string id, ulong seed)
    {
        var task = server.GetTask(id);
        Assert.Equal(TaskKind.Train, task.Kind);
        var delta = new float[server.Layout.TotalLength];
        new Rng(seed).FillGaussian(delta, 0, 0.3f);
        long examples = 2 + (long)seed % 9;
        var payload = UpdateCodec.EncodeFloat32(delta);
        var header = FlClient.Header(task.Round, task.GlobalVersion, payload, examples, new Dictionary<string, double> { ["train_loss"] = seed });
        Assert.Equal(UploadStatus.Incomplete, server.BeginUpload(id, header).Status);
        Assert.Equal(UploadStatus.Accepted, server.AppendChunk(id, header.UploadId, 0, payload).Status);
        // a retried upload (same id, same bytes) is answered from the store and folded nowhere again
        Assert.Equal(UploadStatus.Accepted, server.BeginUpload(id, header).Status);
        return (id, delta, examples);
    }

    public static TheoryData<string, string> Cases() => new()
    {
        { "fedavg", "kept" }, { "fedavg", "lost" }, { "fedavg", "duplicated" }, { "fedavg", "unknown-id" }, { "fedyogi", "lost" }, { "fedadam", "duplicated" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task EveryAcknowledgedUpdateIsInTheNewGlobalExactlyOnce(string strategy, string fault)
    {
        Func<IReadOnlyList<ShardPartial>, IReadOnlyList<ShardPartial>> tamper = fault switch
        {
            "kept" => ps => ps,
            "lost" => ps => ps.Skip(1).ToList(),                  // a shard's process died with its partial
            "duplicated" => ps => [.. ps, ps[0]],                 // a shard handed its partial twice
            "unknown-id" => ps => [.. ps.Skip(1), ps[0] with { UploadIds = [.. ps[0].UploadIds[1..], "never-accepted-0001"] }],
            _ => throw new ArgumentException(fault),
        };
        var layout = FlTestServer.Layout(9, 13);
        using var server = NewServer(layout, strategy, tamper);
        var ids = Enumerable.Range(0, Clients).Select(i => server.Enrol(FlTestServer.Token, $"c{i}", 10, "test").ClientId).ToList();
        var sent = ids.Select((id, i) => Upload(server, id, (ulong)(100 + i))).ToList();
        await FlServerTests.WaitFor(() => server.GlobalVersion == 1);

        var expected = StrategyFactory.Create(strategy).Aggregate(1, new float[layout.TotalLength],
            sent.Select(s => new ClientUpdate(s.Id, s.Delta, s.Examples)).ToList());
        var actual = server.Global;
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6);
        Assert.Equal(Clients, Assert.Single(server.Results()).Accepted);
        Assert.Equal(Clients, server.LastCloseFromShards + server.LastCloseFromStore);
        if (fault is "kept" or "duplicated") Assert.Equal(0, server.LastCloseFromStore); // the second copy of a partial is dropped
        else Assert.InRange(server.LastCloseFromStore, 1, Clients); // what the lost or bad partial held came from the store
    }

    [Fact]
    public void AShardFoldsAnUploadIdOnceAndStartsAfreshForANewRound()
    {
        var shard = new AggregatorShard(new FedAvgStrategy(), 4);
        var u = new ShardUpdate("upload-0001", "c1", 3, [1, 2, 3, 4], 0.5, true);
        shard.Fold(1, u);
        shard.Fold(1, u);
        shard.Fold(1, u with { UploadId = "upload-0002", ClientId = "c2", NumExamples = 1, Delta = [4, 3, 2, 1] });
        var p = shard.Peek(1)!;
        Assert.Equal(2, p.Sum.Count);
        Assert.Equal(4, p.Sum.Weight);
        Assert.Equal([7.0, 9, 11, 13], p.Sum.Sum);
        Assert.Equal(["upload-0001", "upload-0002"], p.UploadIds.Order());
        Assert.Null(shard.Peek(2));
        shard.Fold(2, u with { UploadId = "upload-0003" }); // a new round drops the old round's leftovers
        Assert.Equal(1, shard.Peek(2)!.Sum.Count);
        Assert.Null(shard.Peek(1));
    }

    [Fact]
    public void ShardsSplitClientsByAStableHash()
    {
        var counts = new int[4];
        for (int i = 0; i < 400; i++) counts[ShardOf.Client($"client-{i:x8}", 4)]++;
        Assert.All(counts, c => Assert.InRange(c, 60, 140));
        Assert.Equal(ShardOf.Client("abc", 7), ShardOf.Client("abc", 7));
    }
}
