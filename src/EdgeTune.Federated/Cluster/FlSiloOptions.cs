using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Server.Sharding;
using EdgeTune.Federated.Storage;
using Grpc.Core;
using Orleans;

namespace EdgeTune.Federated.Cluster;

/// <summary>What a silo serves: one federated task, the <see cref="FlServer"/> settings its coordinator grain runs with.</summary>
public sealed record FlSiloOptions
{
    public required FlServerOptions Server { get; init; }

    /// <summary>The adapter's tensors, in the order of the flat vectors.</summary>
    public required UpdateLayout Layout { get; init; }

    /// <summary>Version 0 of the global adapter (zeros when null; ignored when the state already has versions).</summary>
    public float[]? InitialGlobal { get; init; }

    /// <summary>Evaluates a new global vector on the server's validation data (optional).</summary>
    public Func<float[], IReadOnlyDictionary<string, double>>? Evaluate { get; init; }

    /// <summary>The federated task's name (the coordinator grain's key).</summary>
    public string Task { get; init; } = "default";

    /// <summary>Aggregator grains a round's clients are spread over (by a hash of the client id).</summary>
    public int AggregatorShards { get; init; } = 4;

    /// <summary>Called once the coordinator's server exists on this silo (e.g. to subscribe to <see cref="FlServer.RoundCompleted"/>).</summary>
    public Action<FlServer>? ServerStarted { get; init; }

    /// <summary>Orleans silo-to-silo port (0: a free one).</summary>
    public int SiloPort { get; init; }

    /// <summary>Orleans gateway port (0: a free one).</summary>
    public int GatewayPort { get; init; }

    /// <summary>
    /// Null: a cluster of one (this silo alone). Otherwise the silo port of the cluster's primary silo on this machine
    /// (Orleans development clustering over loopback; the primary gives its own <see cref="SiloPort"/>): several silo
    /// processes form one server, the coordinator grain is activated on one of them and moves to another when that one
    /// dies, reopening the task's state from <see cref="FlServerOptions.StateFolder"/> (which every silo must share).
    /// </summary>
    public int? PrimarySiloPort { get; init; }

    /// <summary>
    /// Null: see <see cref="PrimarySiloPort"/>. Otherwise an Npgsql connection string: the silos that give the same one form
    /// one cluster, on any machines. Orleans membership is kept in that database (<see cref="PgMembershipTable"/>: any silo
    /// may die, there is no primary) and so is the task's state (<see cref="Storage.PgStateStore"/>); the local
    /// <see cref="FlServerOptions.StateFolder"/> then only holds part files of uploads in progress.
    /// </summary>
    public string? ClusterConnectionString { get; init; }

    /// <summary>The address other silos reach this one at (with <see cref="ClusterConnectionString"/>; default loopback,
    /// which suits silos on one machine).</summary>
    public string SiloAddress { get; init; } = "127.0.0.1";

    /// <summary>Whether this silo is alone (not part of a cluster of several processes).</summary>
    internal bool Standalone => PrimarySiloPort is null && ClusterConnectionString is null;

    internal FlSiloOptions Validate()
    {
        Server.Validate();
        if (AggregatorShards is < 1 or > 1024) throw new ArgumentException($"silo options: AggregatorShards = {AggregatorShards} is invalid; must be in [1, 1024]", nameof(AggregatorShards));
        if (string.IsNullOrWhiteSpace(Task) || Task.Contains('/')) throw new ArgumentException($"silo options: Task = '{Task}' is invalid; a name without '/' is required", nameof(Task));
        if (PrimarySiloPort is not null && ClusterConnectionString is not null)
            throw new ArgumentException("silo options: give either PrimarySiloPort (one machine, development clustering) or ClusterConnectionString (PostgreSQL), not both", nameof(ClusterConnectionString));
        if (!System.Net.IPAddress.TryParse(SiloAddress, out _)) throw new ArgumentException($"silo options: SiloAddress = '{SiloAddress}' is not an IP address", nameof(SiloAddress));
        if (InitialGlobal is not null && InitialGlobal.Length != Layout.TotalLength)
            throw new ArgumentException($"silo options: the initial global vector has {InitialGlobal.Length} values; the layout needs {Layout.TotalLength}", nameof(InitialGlobal));
        return this;
    }
}

/// <summary>A silo's services for the federated grains: makes the coordinator's <see cref="FlServer"/> (once per task and
/// process) and the aggregators' shards.</summary>
internal sealed class FlSiloServices(FlSiloOptions options) : IDisposable
{
    private readonly Lock _lock = new();
    private FlServer? _server;
    private bool _disposed;

    public FlSiloOptions Options => options;

    /// <summary>Closes the server when its coordinator grain leaves this silo (the next activation, here or on another
    /// silo, reopens the state: two servers must never hold the same state).</summary>
    public void Release(FlServer server)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_server, server)) return;
            _server = null;
        }
        server.Dispose();
    }

    /// <summary>The task's server in this process, made on first use with aggregator grains as its shards.</summary>
    public FlServer Server(string task, IGrainFactory grains)
    {
        if (task != options.Task) throw new FlRejectedException(StatusCode.NotFound, $"no federated task '{task}' on this silo (it serves '{options.Task}')");
        FlServer? made = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_server is null)
            {
                try
                {
                    _server = made = new FlServer(options.Server, options.Layout, options.InitialGlobal ?? new float[options.Layout.TotalLength], options.Evaluate,
                        strategy: null, telemetry: null, shards: (_, _) => new GrainRoundShards(grains, task, options.AggregatorShards),
                        store: options.ClusterConnectionString is { } cs ? () => new PgStateStore(cs, task, options.Server.StateFolder) : null);
                }
                catch (TimeoutException e)
                {
                    // the previous coordinator's server still holds the state (its silo is going): the client retries
                    throw new FlRejectedException(StatusCode.Unavailable, "the coordinator is moving; retry (" + e.Message + ")");
                }
            }
        }
        if (made is not null) options.ServerStarted?.Invoke(made);
        return made ?? ExistingServer ?? throw new FlRejectedException(StatusCode.Unavailable, "the coordinator is moving; retry");
    }

    /// <summary>The server when this process made it (null otherwise).</summary>
    public FlServer? ExistingServer { get { lock (_lock) return _server; } }

    /// <summary>A fresh shard for aggregator grain "task/index".</summary>
    public AggregatorShard NewShard(string key)
    {
        var strategy = FlServer.CreateStrategy(options.Server) as IStreamingAggregator
            ?? throw new InvalidOperationException($"strategy '{options.Server.Strategy}' does not stream; it has no aggregator shards");
        return new AggregatorShard(strategy, checked((int)options.Layout.TotalLength));
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _server?.Dispose();
        }
    }
}
