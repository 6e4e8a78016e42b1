using System.Runtime.InteropServices;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Server.Sharding;
using Google.Protobuf;
using Grpc.Core;
using Orleans;
using Orleans.Concurrency;

namespace EdgeTune.Federated.Cluster;

/// <summary>A coordinator call's outcome: a protobuf reply (or raw bytes), or the refusal's status and reason.</summary>
[GenerateSerializer, Immutable]
public sealed record FlGrainReply([property: Id(0)] byte[]? Payload, [property: Id(1)] int Status = 0, [property: Id(2)] string? Error = null);

/// <summary>
/// The coordinator of one federated task (key: the task's name): enrolment, round scheduling, upload acceptance and the
/// close of each round, by the task's <see cref="FlServer"/> logic and state store. One activation in the cluster;
/// requests and replies are protobuf bytes (the wire messages of the gRPC protocol).
/// </summary>
public interface IFlCoordinatorGrain : IGrainWithStringKey
{
    Task<FlGrainReply> Enrol(string token, string displayName, long numExamples, string peer);
    Task<FlGrainReply> Authenticate(string? clientId, string? credential);
    Task<FlGrainReply> GetTask(string clientId);
    Task<FlGrainReply> GlobalBytes(long version);
    Task<FlGrainReply> BeginUpload(string clientId, byte[] header);
    Task<FlGrainReply> AppendChunk(string clientId, string uploadId, long offset, Immutable<byte[]> data);
    Task<FlGrainReply> QueryUpload(string clientId, string uploadId);
    Task<FlGrainReply> ReportEval(string clientId, byte[] report);
    Task<FlGrainReply> Heartbeat(string clientId);
    Task<FlGrainReply> SendSecAgg(string clientId, byte[] message);
    Task<FlGrainReply> FetchSecAgg(string clientId, byte[] request);
    Task Tick();
}

/// <summary>One shard of a task's round aggregation (key: "task/index"): folds the accepted updates of the clients that
/// hash to it into a running partial sum, and hands the partial (with the upload ids in it) to the coordinator at the close.</summary>
public interface IFlAggregatorGrain : IGrainWithStringKey
{
    /// <summary>Folds an update (idempotent by upload id); the strategy's reason when it refuses it, else null.</summary>
    Task<string?> Fold(int round, ShardUpdate update);

    /// <summary>The shard's partial of <paramref name="round"/> (null when it holds none); the shard is cleared.</summary>
    Task<ShardPartial?> Collect(int round);
}

[CollectionAgeLimit(AlwaysActive = true), Orleans.Placement.PreferLocalPlacement]
internal sealed class FlCoordinatorGrain(FlSiloServices services) : Grain, IFlCoordinatorGrain
{
    private FlServer _server = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _server = services.Server(this.GetPrimaryKeyString(), GrainFactory);
        return base.OnActivateAsync(cancellationToken);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        services.Release(_server);
        return base.OnDeactivateAsync(reason, cancellationToken);
    }

    public Task<FlGrainReply> Enrol(string token, string displayName, long numExamples, string peer) => Run(() => _server.Enrol(token, displayName, numExamples, peer));

    public Task<FlGrainReply> Authenticate(string? clientId, string? credential) => Run(() =>
    {
        _server.Authenticate(clientId, credential);
        return null;
    });

    public Task<FlGrainReply> GetTask(string clientId) => Run(() => _server.GetTask(clientId));

    public Task<FlGrainReply> GlobalBytes(long version)
    {
        try
        {
            var bytes = _server.GlobalBytesShared(version);
            // the latest version's array is made once and never written: it travels as it is
            var array = MemoryMarshal.TryGetArray(bytes, out var seg) && seg.Offset == 0 && seg.Count == seg.Array!.Length ? seg.Array : bytes.ToArray();
            return Task.FromResult(new FlGrainReply(array));
        }
        catch (FlRejectedException e) { return Task.FromResult(new FlGrainReply(null, (int)e.Status, e.Message)); }
    }

    public Task<FlGrainReply> BeginUpload(string clientId, byte[] header) => Run(() => _server.BeginUpload(clientId, UploadHeader.Parser.ParseFrom(header)));

    public Task<FlGrainReply> AppendChunk(string clientId, string uploadId, long offset, Immutable<byte[]> data) =>
        Run(() => _server.AppendChunk(clientId, uploadId, offset, data.Value));

    public Task<FlGrainReply> QueryUpload(string clientId, string uploadId) => Run(() => _server.QueryUpload(clientId, uploadId));

    public Task<FlGrainReply> ReportEval(string clientId, byte[] report) => Run(() =>
    {
        _server.ReportEval(clientId, EvalReport.Parser.ParseFrom(report));
        return null;
    });

    public Task<FlGrainReply> Heartbeat(string clientId) => Run(() => _server.Heartbeat(clientId));

    public Task<FlGrainReply> SendSecAgg(string clientId, byte[] message) => Run(() =>
    {
        _server.SendSecAgg(clientId, SecAggMessage.Parser.ParseFrom(message));
        return null;
    });

    public Task<FlGrainReply> FetchSecAgg(string clientId, byte[] request) => Run(() => _server.FetchSecAgg(clientId, FetchSecAggRequest.Parser.ParseFrom(request)));

    public Task Tick()
    {
        _server.Tick();
        return Task.CompletedTask;
    }

    private static Task<FlGrainReply> Run(Func<IMessage?> body)
    {
        try { return Task.FromResult(new FlGrainReply(body()?.ToByteArray())); }
        catch (FlRejectedException e) { return Task.FromResult(new FlGrainReply(null, (int)e.Status, e.Message)); }
        catch (InvalidProtocolBufferException e) { return Task.FromResult(new FlGrainReply(null, (int)StatusCode.InvalidArgument, "malformed message: " + e.Message)); }
    }
}

[CollectionAgeLimit(AlwaysActive = true)]
internal sealed class FlAggregatorGrain(FlSiloServices services) : Grain, IFlAggregatorGrain
{
    private AggregatorShard? _shard;

    public Task<string?> Fold(int round, ShardUpdate update)
    {
        _shard ??= services.NewShard(this.GetPrimaryKeyString());
        try
        {
            _shard.Fold(round, update);
            return Task.FromResult<string?>(null);
        }
        catch (ArgumentException e) { return Task.FromResult<string?>(e.Message); }
    }

    public Task<ShardPartial?> Collect(int round)
    {
        var partial = _shard?.Peek(round);
        _shard?.Clear();
        return Task.FromResult(partial);
    }
}

/// <summary>The shards of a server hosted by a coordinator grain: aggregator grains "task/0" … "task/(n−1)".</summary>
internal sealed class GrainRoundShards(IGrainFactory grains, string task, int count) : IRoundShards
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    private int _folded;

    public int Count => count;

    private readonly IFlAggregatorGrain[] _shards = Enumerable.Range(0, count).Select(i => grains.GetGrain<IFlAggregatorGrain>($"{task}/{i}")).ToArray();

    private IFlAggregatorGrain Shard(int i) => _shards[i];

    public void Fold(int round, ShardUpdate update)
    {
        string? refused;
        // the coordinator's turn waits for its shard: an update is acknowledged only after its fold (or its refusal). The
        // call is made off the grain's scheduler: its continuation must not wait for the turn that is waiting for it
        var shard = Shard(ShardOf.Client(update.ClientId, count));
        try { refused = Task.Run(() => shard.Fold(round, update).WaitAsync(CallTimeout)).GetAwaiter().GetResult(); }
        catch (Exception e) when (e is not ArgumentException) { throw new ShardUnavailableException($"aggregator shard of client '{update.ClientId}' unreachable: {e.Message}", e); }
        if (refused is not null) throw new ArgumentException(refused);
        _folded++;
    }

    public IReadOnlyList<ShardPartial> Collect(int round)
    {
        var calls = Enumerable.Range(0, count).Select(i => Task.Run(() => Shard(i).Collect(round).WaitAsync(CallTimeout))).ToArray(); // off the grain's scheduler, as Fold
        var list = new List<ShardPartial>();
        foreach (var c in calls)
        {
            // a shard that cannot answer is left out: the close folds its updates from the store
            try { if (c.GetAwaiter().GetResult() is { } p) list.Add(p); }
            catch (Exception e) when (e is not OutOfMemoryException) { }
        }
        _folded = 0;
        return list;
    }

    /// <summary>The running sums live in the aggregator grains, not in this process.</summary>
    public long RetainedBytes => 0;

    public int Folded => _folded;
}

/// <summary>The task's coordinator grain behind <see cref="IFlService"/> (what every silo's gRPC endpoint talks to).</summary>
internal sealed class GrainFlService(IGrainFactory grains, string task) : IFlService
{
    // a grain reference stays valid wherever (and however often) the grain is activated; GetGrain resolved the interface
    // type through reflection on every call (about 6% of a silo's CPU time at N = 1,000, where each client polls twice a second)
    private IFlCoordinatorGrain Coordinator { get; } = grains.GetGrain<IFlCoordinatorGrain>(task);

    /// <summary>Runs a coordinator call; the cluster failing to reach the coordinator (its silo died and it is being
    /// reactivated elsewhere) is Unavailable, which clients retry, here or on another silo.</summary>
    private static async Task<FlGrainReply> Call(Func<Task<FlGrainReply>> call)
    {
        try { return await call().ConfigureAwait(false); }
        catch (Exception e) when (e is OrleansException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new FlRejectedException(StatusCode.Unavailable, "the coordinator is unavailable (" + e.GetType().Name + "); retry");
        }
    }

    private static T Parse<T>(FlGrainReply r, MessageParser<T> parser) where T : IMessage<T>
    {
        Check(r);
        return parser.ParseFrom(r.Payload ?? []);
    }

    private static void Check(FlGrainReply r)
    {
        if (r.Error is not null) throw new FlRejectedException((StatusCode)r.Status, r.Error);
    }

    public async Task<EnrolReply> EnrolAsync(string token, string displayName, long numExamples, string peer) =>
        Parse(await Call(() => Coordinator.Enrol(token, displayName, numExamples, peer)).ConfigureAwait(false), EnrolReply.Parser);

    public async Task<string> AuthenticateAsync(string? clientId, string? credential)
    {
        Check(await Call(() => Coordinator.Authenticate(clientId, credential)).ConfigureAwait(false));
        return clientId!;
    }

    public async Task<TaskReply> GetTaskAsync(string clientId) => Parse(await Call(() => Coordinator.GetTask(clientId)).ConfigureAwait(false), TaskReply.Parser);

    /// <summary>A global version never changes once stored, so this silo fetches the version its clients ask for from the
    /// coordinator once and serves every download from that copy (one model's bytes per silo). Before, each download was a
    /// grain call carrying the whole vector, which a silo other than the coordinator's received as a fresh copy per client.</summary>
    public async Task<ReadOnlyMemory<byte>> GlobalBytesAsync(long version)
    {
        Task<FlGrainReply> fetch;
        lock (_globalLock)
        {
            if (_global is not { } g || g.Version != version || g.Fetch.IsFaulted || g.Fetch.IsCanceled || g.Fetch is { IsCompletedSuccessfully: true, Result.Error: not null })
                _global = (version, Call(() => Coordinator.GlobalBytes(version))); // a refusal or a failure is not kept: the next download asks again
            fetch = _global.Value.Fetch;
        }
        var r = await fetch.ConfigureAwait(false);
        Check(r);
        return r.Payload ?? [];
    }

    private readonly Lock _globalLock = new();
    private (long Version, Task<FlGrainReply> Fetch)? _global; // the last global version asked for and its fetch

    public async Task<UploadReply> BeginUploadAsync(string clientId, UploadHeader header) =>
        Parse(await Call(() => Coordinator.BeginUpload(clientId, header.ToByteArray())).ConfigureAwait(false), UploadReply.Parser);

    public async Task<UploadReply> AppendChunkAsync(string clientId, string uploadId, long offset, ReadOnlyMemory<byte> data)
    {
        var bytes = MemoryMarshal.TryGetArray(data, out var seg) && seg.Offset == 0 && seg.Count == seg.Array!.Length ? seg.Array : data.ToArray();
        return Parse(await Call(() => Coordinator.AppendChunk(clientId, uploadId, offset, new Immutable<byte[]>(bytes))).ConfigureAwait(false), UploadReply.Parser);
    }

    public async Task<QueryUploadReply> QueryUploadAsync(string clientId, string uploadId) =>
        Parse(await Call(() => Coordinator.QueryUpload(clientId, uploadId)).ConfigureAwait(false), QueryUploadReply.Parser);

    public async Task ReportEvalAsync(string clientId, EvalReport report) => Check(await Call(() => Coordinator.ReportEval(clientId, report.ToByteArray())).ConfigureAwait(false));

    public async Task<HeartbeatReply> HeartbeatAsync(string clientId) => Parse(await Call(() => Coordinator.Heartbeat(clientId)).ConfigureAwait(false), HeartbeatReply.Parser);

    public async Task SendSecAggAsync(string clientId, SecAggMessage message) => Check(await Call(() => Coordinator.SendSecAgg(clientId, message.ToByteArray())).ConfigureAwait(false));

    public async Task<FetchSecAggReply> FetchSecAggAsync(string clientId, FetchSecAggRequest request) =>
        Parse(await Call(() => Coordinator.FetchSecAgg(clientId, request.ToByteArray())).ConfigureAwait(false), FetchSecAggReply.Parser);

    public async Task TickAsync()
    {
        try { await Coordinator.Tick().ConfigureAwait(false); }
        catch (Exception e) when (e is OrleansException or TimeoutException) { } // the coordinator's own timer closes the round
    }
}
