using System.Collections.Concurrent;
using System.Security.Cryptography;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.UpdateCompression;
using EdgeTune.Tensors;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace EdgeTune.Federated.Client;

/// <summary>Settings of a <see cref="FlLoadClient"/>.</summary>
public sealed record FlLoadOptions
{
    /// <summary>The server's endpoints; virtual client i starts on endpoint i mod count and moves to the next one when
    /// its endpoint stops answering (a server of several processes).</summary>
    public required IReadOnlyList<Uri> Servers { get; init; }

    public required string Token { get; init; }

    /// <summary>Virtual clients (each enrols as its own client).</summary>
    public int Clients { get; init; } = 100;

    /// <summary>Probability that a client drops out of a round: half before "training", half after sending half of its
    /// update; it stays silent for <see cref="DropoutSilence"/>, then comes back (and resumes its upload).</summary>
    public double Dropout { get; init; }

    public TimeSpan DropoutSilence { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Seed of the dropouts and of the updates (see <see cref="FlLoadClient.Delta"/>).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Standard deviation of the random update values.</summary>
    public double UpdateScale { get; init; } = 1e-3;

    /// <summary>Uploads generated and in flight at once (each holds one encoded update): bounds this process's memory.</summary>
    public int MaxConcurrentUploads { get; init; } = 64;

    /// <summary>Whether a client downloads the round's global adapter before "training" (as a real client does).</summary>
    public bool DownloadGlobal { get; init; } = true;

    public int ChunkBytes { get; init; } = FlServer.MaxChunkBytes;

    /// <summary>How often a client waiting for an upload slot tells the server it is alive (as a training client's
    /// heartbeat does), so that the server does not take it for a straggler that went away.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a call is retried while the server answers Unavailable (restarting, another endpoint taking over).</summary>
    public TimeSpan RetryFor { get; init; } = TimeSpan.FromMinutes(2);

    internal FlLoadOptions Validate()
    {
        if (Servers is null || Servers.Count == 0) throw new ArgumentException("FlLoadClient: at least one server endpoint");
        if (Clients <= 0) throw new ArgumentException($"FlLoadClient: Clients = {Clients} must be > 0");
        if (Dropout is < 0 or >= 1 || double.IsNaN(Dropout)) throw new ArgumentException($"FlLoadClient: Dropout = {Dropout} must be in [0, 1)");
        if (MaxConcurrentUploads <= 0) throw new ArgumentException($"FlLoadClient: MaxConcurrentUploads = {MaxConcurrentUploads} must be > 0");
        if (ChunkBytes <= 0 || ChunkBytes > FlServer.MaxChunkBytes) throw new ArgumentException($"FlLoadClient: ChunkBytes = {ChunkBytes} must be in (0, {FlServer.MaxChunkBytes}]");
        if (HeartbeatInterval <= TimeSpan.Zero) throw new ArgumentException($"FlLoadClient: HeartbeatInterval = {HeartbeatInterval} must be > 0");
        if (!(UpdateScale > 0) || !double.IsFinite(UpdateScale)) throw new ArgumentException($"FlLoadClient: UpdateScale = {UpdateScale} must be finite and > 0");
        return this;
    }
}

/// <summary>An update the server acknowledged as accepted: who sent it, for which round, and how to regenerate its delta
/// (<see cref="FlLoadClient.Delta"/> with the client index and round).</summary>
public sealed record FlLoadAck(string ClientId, int ClientIndex, int Round, long GlobalVersion, string UploadId, long NumExamples);

/// <summary>What a load run did.</summary>
public sealed record FlLoadReport(IReadOnlyList<FlLoadAck> Acknowledged, int Dropouts, IReadOnlyList<string> Rejections, TimeSpan Elapsed);

/// <summary>
/// A fleet of virtual clients that speak the real gRPC protocol (enrol, tasks, global download, resumable chunked
/// uploads, upload queries) without training: each "trained" update is a seeded random f32 vector of the round's real
/// layout size, regenerated on demand from (seed, client, round) so that a test or a benchmark can recompute exactly
/// what the server should have aggregated. Many virtual clients share a few HTTP/2 channels, and at most
/// <see cref="FlLoadOptions.MaxConcurrentUploads"/> encoded updates exist at once, so one process can drive
/// thousands of clients. Dropouts are modelled as <see cref="FlClient"/> does (before training, or mid-upload with a
/// resume later).
/// </summary>
public sealed class FlLoadClient : IAsyncDisposable
{
    private readonly FlLoadOptions _options;
    private readonly GrpcChannel[] _channels;
    private readonly FederatedLearning.FederatedLearningClient[] _rpcs;
    private readonly SemaphoreSlim _uploads;
    private readonly ConcurrentBag<FlLoadAck> _acks = [];
    private readonly ConcurrentBag<string> _rejections = [];
    private int _dropouts;

    public FlLoadClient(FlLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Validate();
        _channels = options.Servers.Select(s => GrpcChannel.ForAddress(s, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true },
            MaxReceiveMessageSize = FlServer.MaxChunkBytes + (64 << 10),
            MaxSendMessageSize = FlServer.MaxChunkBytes + (64 << 10),
        })).ToArray();
        _rpcs = _channels.Select(c => new FederatedLearning.FederatedLearningClient(c)).ToArray();
        _uploads = new SemaphoreSlim(options.MaxConcurrentUploads);
    }

    /// <summary>Example count virtual client <paramref name="clientIndex"/> reports (its FedAvg weight): 50 to 149.</summary>
    public static long NumExamples(ulong seed, int clientIndex) => 50 + (long)(Mix(seed, (ulong)clientIndex, 0x5EED) % 100);

    /// <summary>The delta virtual client <paramref name="clientIndex"/> sends for <paramref name="round"/>: <paramref name="length"/>
    /// Gaussian values of standard deviation <paramref name="scale"/> from a seed made of the three.</summary>
    public static float[] Delta(ulong seed, int clientIndex, int round, int length, double scale)
    {
        var d = new float[length];
        new Rng(Mix(seed, (ulong)clientIndex, (ulong)round)).FillGaussian(d, 0, (float)scale);
        return d;
    }

    /// <summary>Updates acknowledged as accepted so far (while <see cref="RunAsync"/> runs: progress, e.g. to fail a server mid-round).</summary>
    public int AcknowledgedCount => _acks.Count;

    /// <summary>Runs every virtual client until the server says all rounds are done.</summary>
    public async Task<FlLoadReport> RunAsync(CancellationToken ct = default)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, _options.Clients).Select(i => Task.Run(() => RunClientAsync(i, ct), ct))).ConfigureAwait(false);
        return new FlLoadReport(_acks.OrderBy(a => a.Round).ThenBy(a => a.ClientIndex).ToList(), _dropouts, _rejections.ToList(), sw.Elapsed);
    }

    private sealed class Virtual(int index, int endpoint)
    {
        public int Index { get; } = index;
        public int Endpoint { get; set; } = endpoint;
        public string? ClientId { get; set; }
        public string? Credential { get; set; }
        public (int Round, UploadHeader Header)? Pending { get; set; } // an upload cut by a dropout, resumed when the client comes back
        public volatile string Phase = "start"; // what the client is waiting for (diagnostics of a run that does not finish)

        public Metadata Auth() => new() { { FlServer.ClientIdHeader, ClientId! }, { FlServer.CredentialHeader, Credential! } };
    }

    private readonly ConcurrentDictionary<int, Virtual> _virtuals = new();

    /// <summary>Where each client that has not finished stands (phase and endpoint), grouped: what a run that does not
    /// finish is waiting for.</summary>
    public string DescribeUnfinished() => string.Join("; ", _virtuals.Values.Where(v => v.Phase != "done")
        .GroupBy(v => (v.Phase, v.Endpoint)).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} × {g.Key.Phase} @ endpoint {g.Key.Endpoint}"));

    private async Task RunClientAsync(int index, CancellationToken ct)
    {
        var v = new Virtual(index, index % _rpcs.Length);
        _virtuals[index] = v;
        try { await RunClientCoreAsync(v, ct).ConfigureAwait(false); }
        catch (Exception e)
        {
            v.Phase = $"failed in '{v.Phase}': {e.GetType().Name}: {e.Message}";
            throw;
        }
    }

    private async Task RunClientCoreAsync(Virtual v, CancellationToken ct)
    {
        int index = v.Index;
        var dropRng = new Rng(Mix(_options.Seed, (ulong)index, 0xD209));
        long examples = NumExamples(_options.Seed, index);
        v.Phase = "enrol";
        var enrol = await Call(v, rpc => rpc.EnrolAsync(new EnrolRequest { Token = _options.Token, DisplayName = $"load-{index}", NumExamples = examples },
            cancellationToken: ct).ResponseAsync, ct).ConfigureAwait(false);
        (v.ClientId, v.Credential) = (enrol.ClientId, enrol.Credential);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            v.Phase = "get-task";
            var task = await Call(v, rpc => rpc.GetTaskAsync(new GetTaskRequest(), v.Auth(), cancellationToken: ct).ResponseAsync, ct).ConfigureAwait(false);
            if (task.Kind == TaskKind.Done) { v.Phase = "done"; return; }
            v.Phase = $"task {task.Kind} round {task.Round}";
            if (task.Kind != TaskKind.Train)
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(task.RetryAfterSeconds, 0.05, 10)), ct).ConfigureAwait(false);
                continue;
            }
            if (task.SecureAggregation is { Enabled: true })
                throw new InvalidOperationException("FlLoadClient: the server runs secure aggregation, which the load client does not speak");
            bool resume = v.Pending is { } p && p.Round == task.Round;
            if (!resume)
            {
                v.Pending = null;
                double u = _options.Dropout > 0 ? dropRng.NextDouble() : 1;
                bool dropBefore = u < _options.Dropout / 2, dropMid = !dropBefore && u < _options.Dropout;
                if (dropBefore) { await Silence(ct).ConfigureAwait(false); continue; }
                if (_options.DownloadGlobal) await DownloadAsync(v, task, ct).ConfigureAwait(false);
                if (dropMid)
                {
                    await UploadAsync(v, task, examples, cutAfterHalf: true, ct).ConfigureAwait(false);
                    await Silence(ct).ConfigureAwait(false);
                    continue;
                }
            }
            await UploadAsync(v, task, examples, cutAfterHalf: false, ct).ConfigureAwait(false);
        }
    }

    private Task Silence(CancellationToken ct)
    {
        Interlocked.Increment(ref _dropouts);
        return Task.Delay(_options.DropoutSilence, ct);
    }

    private async Task DownloadAsync(Virtual v, TaskReply task, CancellationToken ct)
    {
        long expected = 4L * task.Layout.Tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
        v.Phase = $"download v{task.GlobalVersion}";
        await Call(v, async rpc =>
        {
            using var call = rpc.DownloadGlobal(new DownloadRequest { GlobalVersion = task.GlobalVersion }, v.Auth(), cancellationToken: ct);
            long got = 0;
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (chunk.Offset != got || chunk.TotalBytes != expected) throw new InvalidDataException($"global version {task.GlobalVersion}: chunk at {chunk.Offset} of {chunk.TotalBytes} bytes; expected offset {got} of {expected}");
                got += chunk.Data.Length;
            }
            if (got != expected) throw new InvalidDataException($"global version {task.GlobalVersion}: {got} bytes received, {expected} expected");
            return got;
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Generates the update, sends it from wherever the server stands (all of it, or only the first half with
    /// <paramref name="cutAfterHalf"/>, leaving it pending), and records the acknowledgement.</summary>
    private async Task UploadAsync(Virtual v, TaskReply task, long examples, bool cutAfterHalf, CancellationToken ct)
    {
        int length = checked((int)task.Layout.Tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
        v.Phase = $"upload slot round {task.Round}";
        while (!await _uploads.WaitAsync(_options.HeartbeatInterval, ct).ConfigureAwait(false))
            try { await _rpcs[v.Endpoint].HeartbeatAsync(new HeartbeatRequest { Round = task.Round }, v.Auth(), cancellationToken: ct).ResponseAsync.ConfigureAwait(false); }
            catch (RpcException) { } // a missed heartbeat is not fatal
        try
        {
            byte[] payload = UpdateCodec.EncodeFloat32(Delta(_options.Seed, v.Index, task.Round, length, _options.UpdateScale));
            var header = v.Pending is { } p && p.Round == task.Round ? p.Header
                : FlClient.Header(task.Round, task.GlobalVersion, payload, examples, new Dictionary<string, double> { ["train_loss"] = 1.0 });
            v.Pending = (task.Round, header);
            long stop = cutAfterHalf ? payload.Length / 2 : payload.Length;
            var deadline = DateTime.UtcNow + _options.RetryFor;
            while (true)
            {
                var rpc = _rpcs[v.Endpoint];
                try
                {
                    long offset = 0;
                    try
                    {
                        v.Phase = $"query upload round {task.Round}";
                        var state = await rpc.QueryUploadAsync(new QueryUploadRequest { UploadId = header.UploadId }, v.Auth(), cancellationToken: ct).ResponseAsync.ConfigureAwait(false);
                        if (state.Status != UploadStatus.Incomplete) { Finish(v, task, header, state.Status, state.Reason); return; }
                        offset = state.BytesReceived;
                    }
                    catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { } // the server has never seen it
                    if (offset >= stop && cutAfterHalf) return;
                    using var cut = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    using var call = rpc.UploadUpdate(v.Auth(), cancellationToken: cut.Token);
                    bool answered = false;
                    v.Phase = $"send from {offset} round {task.Round}";
                    try
                    {
                        await call.RequestStream.WriteAsync(new UploadMessage { Header = header }, cut.Token).ConfigureAwait(false);
                        while (offset < stop)
                        {
                            int n = (int)Math.Min(_options.ChunkBytes, stop - offset);
                            await call.RequestStream.WriteAsync(new UploadMessage { Chunk = new DataChunk { Offset = offset, Data = ByteString.CopyFrom(payload, (int)offset, n) } }, cut.Token).ConfigureAwait(false);
                            offset += n;
                        }
                    }
                    catch (Exception e) when (e is RpcException { StatusCode: StatusCode.OK } or IOException) { answered = true; } // the server answered (rejected, complete) or reset the stream before the last chunk: its answer, or a transient error, says which
                    if (cutAfterHalf && !answered)
                    {
                        // let the sent chunks land, then drop the connection as a device going offline would
                        for (int i = 0; i < 200; i++)
                        {
                            try
                            {
                                var seen = await rpc.QueryUploadAsync(new QueryUploadRequest { UploadId = header.UploadId }, v.Auth(), cancellationToken: ct).ResponseAsync.ConfigureAwait(false);
                                if (seen.Status != UploadStatus.Incomplete || seen.BytesReceived >= stop) break;
                            }
                            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { } // the header is not in yet
                            await Task.Delay(20, ct).ConfigureAwait(false);
                        }
                        await cut.CancelAsync().ConfigureAwait(false);
                        try { await call.ResponseAsync.ConfigureAwait(false); } catch (RpcException) { }
                        return;
                    }
                    v.Phase = $"upload reply round {task.Round}";
                    if (!answered) await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                    var reply = await call.ResponseAsync.ConfigureAwait(false);
                    if (reply.Status != UploadStatus.Incomplete) { Finish(v, task, header, reply.Status, reply.Reason); return; }
                }
                catch (RpcException e) when (Transient(e.StatusCode) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested)
                {
                    v.Endpoint = (v.Endpoint + 1) % _rpcs.Length;
                    v.Phase = $"upload retry ({e.StatusCode}) round {task.Round}";
                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
            }
        }
        finally { _uploads.Release(); }
    }

    private void Finish(Virtual v, TaskReply task, UploadHeader header, UploadStatus status, string reason)
    {
        v.Pending = null;
        if (status == UploadStatus.Accepted) _acks.Add(new FlLoadAck(v.ClientId!, v.Index, task.Round, task.GlobalVersion, header.UploadId, header.NumExamples));
        else _rejections.Add($"client {v.Index} round {task.Round}: {reason}");
    }

    /// <summary>One call with retries on transient failures; each failure moves the client to the next endpoint.</summary>
    private async Task<T> Call<T>(Virtual v, Func<FederatedLearning.FederatedLearningClient, Task<T>> call, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + _options.RetryFor;
        int delay = 100;
        while (true)
        {
            try { return await call(_rpcs[v.Endpoint]).ConfigureAwait(false); }
            catch (RpcException e) when (Transient(e.StatusCode) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested)
            {
                v.Endpoint = (v.Endpoint + 1) % _rpcs.Length;
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Math.Min(2000, delay * 2);
            }
        }
    }

    private static bool Transient(StatusCode s) => s is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded
        or StatusCode.ResourceExhausted or StatusCode.Unknown or StatusCode.Cancelled;

    private static ulong Mix(ulong a, ulong b, ulong c)
    {
        Span<byte> bytes = stackalloc byte[24];
        BitConverter.TryWriteBytes(bytes, a);
        BitConverter.TryWriteBytes(bytes[8..], b);
        BitConverter.TryWriteBytes(bytes[16..], c);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return BitConverter.ToUInt64(hash);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var c in _channels) c.Dispose();
        _uploads.Dispose();
        return ValueTask.CompletedTask;
    }
}
