using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Diagnostics;
using EdgeTune.Federated.Privacy;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server.Internal;
using EdgeTune.Federated.Server.Sharding;
using EdgeTune.Federated.Storage;
using EdgeTune.Federated.Validation;
using Grpc.Core;
using ProtoFit = EdgeTune.Federated.Protocol.FitInstructions;

namespace EdgeTune.Federated.Server;

/// <summary>
/// The federated server's logic, independent of the transport (<see cref="FlServerHost"/> puts it behind gRPC):
/// enrolment and authentication, round scheduling (sampling, quorum, deadline, stragglers), resumable uploads,
/// validation, aggregation into a new global version, all persisted in a <see cref="FlStateStore"/> so that a new
/// server on the same state folder continues where a killed one stopped (an accepted update is never lost nor
/// counted twice: upload ids are idempotent and a client contributes once per round). Calls are serialised by one
/// lock; aggregation runs under it, the server-side evaluation of a new global adapter outside it.
/// </summary>
public sealed partial class FlServer : IDisposable
{
    public const string ClientIdHeader = "x-edgetune-client";
    public const string CredentialHeader = "x-edgetune-credential";
    /// <summary>Largest chunk accepted in one message (the transport's message limit is set a little above).</summary>
    public const int MaxChunkBytes = 1 << 20;

    internal static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly Lock _lock = new();
    private readonly Lock _evalLock = new();
    private readonly IFlStateStore _store;
    private readonly IAggregationStrategy _strategy;
    private readonly UpdateValidator _validator;
    private readonly Func<float[], IReadOnlyDictionary<string, double>>? _evaluate;
    private readonly RateLimiter _limiter;
    private readonly Dictionary<string, double> _lastSeen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StoredClient> _clients = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Timer _timer;
    private float[] _global;
    private long _version;
    private int _ticking;
    private bool _disposed;
    private System.Diagnostics.Activity? _roundSpan; // the closing round's span, from aggregation to the end of Tick
    private readonly IRoundShards? _shards; // where the open round's accepted updates are folded (streaming strategies); null otherwise
    private byte[]? _payloadBuffer; // a completed upload's bytes while it is checked and accepted (reused: uploads finish under the lock)
    private float[]? _deltaBuffer;  // its decoded vector (reused likewise)
    private byte[]? _globalBytes;   // the latest global version's bytes, shared by every download (never written after it is made)

    /// <param name="layout">The adapter's tensors, in the order of the flat vectors.</param>
    /// <param name="initialGlobal">Version 0 of the global adapter (ignored when the state folder already has versions).</param>
    /// <param name="evaluate">Evaluates a global vector on the server's validation data (e.g. "loss", "ppl"); optional.</param>
    /// <param name="strategy">The aggregation strategy; default: made from <see cref="FlServerOptions.Strategy"/>.</param>
    /// <param name="telemetry">Where rounds, updates and enrolments are measured; default: <see cref="FederatedTelemetry.Shared"/>.</param>
    public FlServer(FlServerOptions options, UpdateLayout layout, ReadOnlySpan<float> initialGlobal,
        Func<float[], IReadOnlyDictionary<string, double>>? evaluate = null, IAggregationStrategy? strategy = null,
        FederatedTelemetry? telemetry = null)
        : this(options, layout, initialGlobal, evaluate, strategy, telemetry, shards: null)
    {
    }

    /// <param name="shards">Makes the shards that fold a round's accepted updates from the streaming strategy and the vector
    /// length (default: one shard in this process; the Orleans coordinator passes aggregator grains).</param>
    /// <param name="store">Opens the state store (default: SQLite in <see cref="FlServerOptions.StateFolder"/>).</param>
    internal FlServer(FlServerOptions options, UpdateLayout layout, ReadOnlySpan<float> initialGlobal,
        Func<float[], IReadOnlyDictionary<string, double>>? evaluate, IAggregationStrategy? strategy,
        FederatedTelemetry? telemetry, Func<IStreamingAggregator, int, IRoundShards>? shards, Func<IFlStateStore>? store = null)
    {
        Telemetry = telemetry ?? FederatedTelemetry.Shared;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(layout);
        Options = options.Validate();
        Layout = layout;
        if (initialGlobal.Length != layout.TotalLength)
            throw new ArgumentException($"FlServer: the initial global vector has {initialGlobal.Length} values; the layout needs {layout.TotalLength}", nameof(initialGlobal));
        _evaluate = evaluate;
        _strategy = CreateStrategy(options, strategy);
        if (_strategy is IStreamingAggregator streaming)
            _shards = shards?.Invoke(streaming, checked((int)layout.TotalLength)) ?? new LocalRoundShards(streaming, checked((int)layout.TotalLength));
        _validator = new UpdateValidator(layout, new UpdateLimits
        {
            MaxPayloadBytes = MaxUpdateBytes, MaxExamples = 1_000_000_000,
            MaxL2Norm = options.MaxUpdateNorm > 0 ? options.MaxUpdateNorm : double.PositiveInfinity,
        });
        _limiter = new RateLimiter(options.RateLimitPerSecond, options.RateLimitPerSecond * 4);
        _store = store?.Invoke() ?? new FlStateStore(options.StateFolder);
        try
        {
            string layoutJson = LayoutJson(layout);
            if (_store.GetMetaString("layout") is { } saved && saved != layoutJson)
                throw new InvalidOperationException($"FlServer: the state in '{_store.Location}' belongs to a different adapter layout");
            if (_store.LatestGlobalVersion() is long v)
            {
                _version = v;
                _global = VectorBytes.ToFloats(_store.GetGlobal(v), layout.TotalLength);
                if (_store.GetMeta("strategy_state") is { Length: > 0 } st) _strategy.LoadState(st);
            }
            else
            {
                _global = initialGlobal.ToArray();
                _store.InitGlobal(layoutJson, VectorBytes.ToBytes(_global));
            }
            // clients selected before a restart get a full liveness period to come back
            if (_store.LatestRound() is { Open: true } open)
                foreach (var (c, _) in _store.Assignments(open.Round)) _lastSeen[c] = FlStateStore.Now();
            // secure aggregation keeps its protocol state in memory: a round interrupted by a restart cannot finish
            if (Options.SecureAggregation && _store.LatestRound() is { Open: true } interrupted)
                FailSecAggLocked(interrupted, "the server restarted during the secure-aggregation round; its masks cannot be recovered", FlStateStore.Now());
            if (IsFinished()) _done.TrySetResult();
        }
        catch
        {
            _store.Dispose();
            throw;
        }
        _timer = new Timer(_ => Tick(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
    }

    /// <summary>The strategy the options name (or <paramref name="strategy"/>), wrapped in differential privacy when the
    /// options ask for it: what a server aggregates with, and what its aggregator shards fold with.</summary>
    internal static IAggregationStrategy CreateStrategy(FlServerOptions options, IAggregationStrategy? strategy = null)
    {
        var s = strategy ?? StrategyFactory.Create(options.Strategy, options.StrategyOptions);
        if (options.DpNoiseMultiplier > 0)
            s = new DifferentialPrivacyStrategy(s, new DifferentialPrivacyOptions
            {
                Mode = options.DpLocal ? DpMode.Local : DpMode.Central, ClipNorm = options.DpClipNorm, NoiseMultiplier = options.DpNoiseMultiplier,
                SamplingRate = options.FractionFit, Delta = options.DpDelta,
                Seed = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), // noise must not be predictable from the options
            });
        return s;
    }

    public FlServerOptions Options { get; }

    public UpdateLayout Layout { get; }

    /// <summary>The server's metrics (System.Diagnostics.Metrics).</summary>
    public FederatedTelemetry Telemetry { get; }

    /// <summary>Raised after each round's new global version is stored (and evaluated, when the server evaluates).</summary>
    public event Action<FlRoundResult>? RoundCompleted;

    /// <summary>The latest global version number (0 = initial).</summary>
    public long GlobalVersion { get { lock (_lock) return _version; } }

    /// <summary>A copy of the latest global vector.</summary>
    public float[] Global { get { lock (_lock) return (float[])_global.Clone(); } }

    /// <summary>Completes when every round is done.</summary>
    public Task Completion => _done.Task;

    public string StateFolder => _store.Folder;

    /// <summary>Updates accepted so far in <paramref name="round"/>.</summary>
    public int AcceptedCount(int round)
    {
        lock (_lock) return _store.AcceptedCount(round);
    }

    /// <summary>The accepted updates of a round as stored (bytes included).</summary>
    public IReadOnlyList<StoredUpdate> AcceptedUpdates(int round)
    {
        lock (_lock) return _store.Updates(round);
    }

    /// <summary>The completed rounds' results, in order (from the state database).</summary>
    public IReadOnlyList<FlRoundResult> Results()
    {
        lock (_lock)
            return _store.Rounds().Where(r => !r.Open && r.MetricsJson is not null)
                .Select(r => JsonSerializer.Deserialize<FlRoundResult>(r.MetricsJson!, Json)!).ToList();
    }

    /// <summary>Rejections with their reasons (all rounds, or one).</summary>
    public IReadOnlyList<(string? UploadId, string? ClientId, int? Round, string Reason)> Rejections(int? round = null)
    {
        lock (_lock) return _store.Rejections(round);
    }

    // ---------------- enrolment and authentication ----------------

    public EnrolReply Enrol(string token, string displayName, long numExamples, string peer)
    {
        if (!_limiter.TryTake("enrol:" + peer)) throw new FlRejectedException(StatusCode.ResourceExhausted, "too many enrolment attempts; slow down");
        if (token is null || !Credentials.SameSecret(token, Options.EnrolmentToken))
            throw new FlRejectedException(StatusCode.Unauthenticated, "invalid enrolment token");
        if (displayName.Length > 128) displayName = displayName[..128];
        if (numExamples < 0) numExamples = 0;
        string id = Credentials.NewClientId(), secret = Credentials.NewSecret();
        var salt = Credentials.NewSalt();
        var client = new StoredClient(id, displayName, salt, Credentials.Hash(salt, secret), numExamples);
        lock (_lock)
        {
            ThrowIfDisposed();
            _store.AddClient(client);
            _clients[id] = client;
        }
        Telemetry.RecordEnrolled();
        return new EnrolReply { ClientId = id, Credential = secret };
    }

    /// <summary>The client id when <paramref name="credential"/> is that client's; else Unauthenticated. Applies the rate limit.</summary>
    public string Authenticate(string? clientId, string? credential)
    {
        if (string.IsNullOrEmpty(clientId) || string.IsNullOrEmpty(credential) || clientId.Length > 64 || credential.Length > 256)
            throw new FlRejectedException(StatusCode.Unauthenticated, $"missing or malformed '{ClientIdHeader}'/'{CredentialHeader}' metadata");
        StoredClient? c;
        lock (_lock)
        {
            ThrowIfDisposed();
            if (!_clients.TryGetValue(clientId, out c) && (c = _store.GetClient(clientId)) is not null) _clients[clientId] = c;
        }
        if (c is null || !Credentials.Verify(c.Salt, c.CredentialHash, credential))
            throw new FlRejectedException(StatusCode.Unauthenticated, "unknown client or wrong credential");
        if (!_limiter.TryTake(clientId)) throw new FlRejectedException(StatusCode.ResourceExhausted, "rate limit exceeded; slow down");
        lock (_lock) _lastSeen[clientId] = FlStateStore.Now();
        return clientId;
    }

    // ---------------- tasks and the global adapter ----------------

    public TaskReply GetTask(string clientId)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            var round = CurrentOpenRound(openIfDue: true);
            if (round is null)
                return IsFinished()
                    ? new TaskReply { Kind = TaskKind.Done, GlobalVersion = _version, Message = $"all {Options.Rounds} rounds are done" }
                    : Wait($"waiting for {Options.MinClients} enrolled clients ({_store.ClientCount()} so far)");
            if (_store.HasUpdate(round.Round, clientId)) return WaitIdle($"your update for round {round.Round} is in; waiting for the round to close");
            // once the roster is fixed nobody (re)starts the round: a retrained client could not join the masks
            if (Options.SecureAggregation && SecAggPastAdvertise(round)) return Wait($"round {round.Round}'s secure aggregation is under way");
            if (!_store.IsAssigned(round.Round, clientId))
            {
                if (Occupied(round) >= round.Target) return WaitIdle($"round {round.Round} has all the clients it needs");
                if (!Sampled(round, clientId)) return WaitIdle($"not drawn for round {round.Round}");
                _store.Assign(round.Round, clientId);
            }
            var fit = _strategy.ConfigureFit(round.Round, Options.Fit with { Seed = RoundSeed(round.Round) });
            var reply = new TaskReply
            {
                Kind = TaskKind.Train, Round = round.Round, GlobalVersion = round.GlobalVersion, Layout = ToProto(Layout),
                Fit = new ProtoFit
                {
                    LocalSteps = fit.LocalSteps, LearningRate = fit.LearningRate, BatchSize = fit.BatchSize,
                    SequenceLength = fit.SequenceLength, ProximalMu = fit.ProximalMu, Seed = fit.Seed,
                },
                Privacy = new PrivacySettings
                {
                    MaxUpdateNorm = Options.MaxUpdateNorm,
                    LocalClipNorm = Options.DpLocal ? Options.DpClipNorm : 0,
                    LocalNoiseMultiplier = Options.DpLocal ? Options.DpNoiseMultiplier : 0,
                },
                SecureAggregation = new SecAggSettings { Enabled = Options.SecureAggregation, Threshold = Options.SecureAggregation ? SecAggThresholdFor(round.Target) : 0 },
                UpdateEncoding = Options.UpdateEncoding,
                MaxUpdateBytes = MaxUpdateBytes,
                DeadlineSeconds = Math.Max(0, round.Deadline - FlStateStore.Now()),
            };
            if (Options.SecureAggregation)
                reply.SecureAggregation.Participants.AddRange(_store.Assignments(round.Round).Select(a => a.ClientId));
            return reply;
        }
    }

    /// <summary>Bound on an update's encoded size: 4 bytes a value (8 for a masked input, which has one more value) plus 64 KiB for headers.</summary>
    public long MaxUpdateBytes => (Options.SecureAggregation ? (Layout.TotalLength + 1L) * 8 : Layout.TotalLength * 4L) + (64 << 10);

    /// <summary>The strategy aggregating the rounds.</summary>
    public IAggregationStrategy Strategy => _strategy;

    /// <summary>The bytes of a stored global version (float32 little-endian, layout order).</summary>
    public byte[] GlobalBytes(long version)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            return _store.GetGlobal(version) ?? throw new FlRejectedException(StatusCode.NotFound, $"global version {version} does not exist (latest is {_version})");
        }
    }

    /// <summary>A global version's bytes for streaming to clients without copying: the latest version comes from one array
    /// made once per version and shared by every download (callers must not write to it); older ones from the store.</summary>
    internal ReadOnlyMemory<byte> GlobalBytesShared(long version)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (version == _version) return _globalBytes ??= VectorBytes.ToBytes(_global);
            return _store.GetGlobal(version) ?? throw new FlRejectedException(StatusCode.NotFound, $"global version {version} does not exist (latest is {_version})");
        }
    }

    public HeartbeatReply Heartbeat(string clientId)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            var latest = _store.LatestRound();
            return new HeartbeatReply { CurrentRound = latest?.Round ?? 0, GlobalVersion = _version };
        }
    }

    public void ReportEval(string clientId, EvalReport report)
    {
        if (report.Metrics.Count > 64) throw new FlRejectedException(StatusCode.InvalidArgument, "at most 64 metrics per report");
        if (report.Metrics.Any(kv => kv.Key.Length > 64 || !double.IsFinite(kv.Value)))
            throw new FlRejectedException(StatusCode.InvalidArgument, "metric names must be ≤ 64 characters and values finite");
        lock (_lock)
        {
            ThrowIfDisposed();
            if (_store.GetGlobal(report.GlobalVersion) is null) throw new FlRejectedException(StatusCode.InvalidArgument, $"global version {report.GlobalVersion} does not exist");
            _store.AddEval(report.Round, clientId, report.GlobalVersion, Math.Max(0, report.NumExamples), report.Metrics);
        }
    }

    // ---------------- secure-aggregation relay ----------------

    public void SendSecAgg(string clientId, SecAggMessage message)
    {
        if (message.Payload.Length > MaxChunkBytes) throw new FlRejectedException(StatusCode.InvalidArgument, "secure-aggregation message over 1 MiB");
        lock (_lock)
        {
            ThrowIfDisposed();
            if (!_store.IsAssigned(message.Round, clientId)) throw new FlRejectedException(StatusCode.PermissionDenied, $"not a participant of round {message.Round}");
            if (Options.SecureAggregation)
            {
                if (message.To != ServerRecipient)
                    throw new FlRejectedException(StatusCode.InvalidArgument, $"with secure aggregation, relay messages go to '{ServerRecipient}', not '{message.To}'");
                ReceiveSecAggLocked(clientId, message);
                return;
            }
            if (message.To != "*" && !_store.IsAssigned(message.Round, message.To)) throw new FlRejectedException(StatusCode.InvalidArgument, $"'{message.To}' is not a participant of round {message.Round}");
            _store.AddSecAgg(message.Round, message.Stage, clientId, message.To, message.Payload.ToByteArray());
        }
    }

    public FetchSecAggReply FetchSecAgg(string clientId, FetchSecAggRequest request)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            if (Options.SecureAggregation) RequireSecAggRoundOpen(request.Round);
            var reply = new FetchSecAggReply();
            foreach (var (from, to, payload) in _store.SecAggFor(request.Round, request.Stage, clientId))
                reply.Messages.Add(new SecAggEnvelope { Stage = request.Stage, From = from, To = to, Payload = Google.Protobuf.ByteString.CopyFrom(payload) });
            return reply;
        }
    }

    // ---------------- helpers ----------------

    private static TaskReply Wait(string why, double retryAfterSeconds = 0.5) => new() { Kind = TaskKind.Wait, RetryAfterSeconds = retryAfterSeconds, Message = why };

    /// <summary>Polls a second, all clients together, that the server asks of clients with nothing to do in the open round.</summary>
    internal const double IdlePollsPerSecond = 200;

    /// <summary>A wait for a client with nothing to do in the open round (its update is in, or it has no place): it is told to
    /// come back after clients / <see cref="IdlePollsPerSecond"/> seconds (0.5 s to 5 s), so their polls cost the server about
    /// the same whatever the fleet's size. At 0.5 s for everyone, 1,000 clients whose updates were in made 2,000 calls a second
    /// to the coordinator while the round's uploads waited behind them. Such a client is not a straggler: its liveness does not
    /// count, and it hears of the next round at its next poll.</summary>
    private TaskReply WaitIdle(string why) => Wait(why, Math.Clamp(_clients.Count / IdlePollsPerSecond, 0.5, 5));

    /// <summary>
    /// Client sampling: each client is drawn for a round independently with probability <see cref="FlServerOptions.FractionFit"/>
    /// (Poisson sampling, what the DP accountant's sampling rate assumes), from a seeded hash of the round and the client id, so a
    /// restarted server draws the same clients. After half the round deadline anyone may take a remaining place, so a round whose
    /// draw came up short (or whose drawn clients are offline) still completes.
    /// </summary>
    private bool Sampled(StoredRound round, string clientId) =>
        Options.FractionFit >= 1 || FlStateStore.Now() >= round.StartedAt + Options.RoundDeadline.TotalSeconds / 2
        || Draws(RoundSeed(round.Round), clientId, Options.FractionFit);

    /// <summary>Whether <paramref name="clientId"/> is in round <paramref name="round"/>'s draw (ignoring the half-deadline fallback).</summary>
    internal bool IsDrawn(int round, string clientId) => Options.FractionFit >= 1 || Draws(RoundSeed(round), clientId, Options.FractionFit);

    /// <summary>Whether <paramref name="clientId"/> is drawn with probability <paramref name="fraction"/> under <paramref name="roundSeed"/>.</summary>
    internal static bool Draws(int roundSeed, string clientId, double fraction)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{roundSeed}:{clientId}"));
        double u = (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(hash) >> 11) * (1.0 / (1UL << 53));
        return u < fraction;
    }

    private int RoundSeed(int round) => (int)(((Options.Seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)round * 0xBF58476D1CE4E5B9UL)) >> 33);

    /// <summary>Places taken in the round: delivered updates plus selected clients still alive.</summary>
    private int Occupied(StoredRound round)
    {
        double now = FlStateStore.Now();
        int n = 0;
        foreach (var (c, _) in _store.Assignments(round.Round))
            if (_store.HasUpdate(round.Round, c) || Alive(c, now)) n++;
        return n;
    }

    private bool Alive(string clientId, double now) =>
        _lastSeen.TryGetValue(clientId, out double t) && now - t <= Options.LivenessTimeout.TotalSeconds;

    private bool IsFinished() => _store.LatestRound() is { Open: false } r && r.Round >= Options.Rounds;

    /// <summary>The open round; with <paramref name="openIfDue"/> opens the next one when the previous is closed,
    /// rounds remain and enough clients are enrolled.</summary>
    private StoredRound? CurrentOpenRound(bool openIfDue)
    {
        var latest = _store.LatestRound();
        if (latest is { Open: true }) return latest;
        int next = (latest?.Round ?? 0) + 1;
        if (!openIfDue || next > Options.Rounds) return null;
        int enrolled = _store.ClientCount();
        if (enrolled < Options.MinClients) return null;
        int target = Math.Min(enrolled, Math.Max(Options.MinClients, (int)Math.Ceiling(Options.FractionFit * enrolled)));
        double now = FlStateStore.Now();
        var round = new StoredRound(next, true, _version, target, now, now + Options.RoundDeadline.TotalSeconds, null, null);
        _store.AddRound(round);
        return round;
    }

    internal static Layout ToProto(UpdateLayout layout)
    {
        var l = new Layout();
        foreach (var s in layout.Slots)
        {
            var t = new Protocol.Tensor { Name = s.Name };
            t.Shape.AddRange(s.Shape);
            l.Tensors.Add(t);
        }
        return l;
    }

    internal static UpdateLayout FromProto(Layout layout) => new(layout.Tensors.Select(t => (t.Name, t.Shape.ToArray())));

    private static string LayoutJson(UpdateLayout layout) =>
        JsonSerializer.Serialize(layout.Slots.Select(s => new { name = s.Name, shape = s.Shape }));

    [GeneratedRegex("^[A-Za-z0-9_-]{8,64}$")]
    private static partial Regex UploadIdPattern();

    private static string Sha256Hex(byte[] b) => Convert.ToHexString(SHA256.HashData(b));

    private void ThrowIfDisposed()
    {
        if (_disposed) throw new FlRejectedException(StatusCode.Unavailable, "the server is shutting down");
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _timer.Dispose();
        lock (_evalLock)
            lock (_lock) _store.Dispose();
    }
}
