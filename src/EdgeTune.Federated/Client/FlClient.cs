using System.Security.Cryptography;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Server.Internal;
using EdgeTune.Federated.UpdateCompression;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace EdgeTune.Federated.Client;

/// <summary>How a <see cref="FlClient"/> connects and behaves.</summary>
public sealed record FlClientOptions
{
    /// <summary>The server's address (http://host:port, or https:// when it serves TLS).</summary>
    public required Uri Server { get; init; }

    /// <summary>Enrolment token (needed unless <see cref="ClientId"/> and <see cref="Credential"/> are given).</summary>
    public string? Token { get; init; }

    /// <summary>An identity from an earlier enrolment.</summary>
    public string? ClientId { get; init; }
    public string? Credential { get; init; }

    public string DisplayName { get; init; } = "edgetune-client";

    /// <summary>How long to keep retrying while the server is unreachable (restarts) before giving up.</summary>
    public TimeSpan RetryFor { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Heartbeat period while training (keeps the client's place in the round).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Upload chunk size (at most 1 MiB).</summary>
    public int ChunkBytes { get; init; } = FlServer.MaxChunkBytes;

    /// <summary>Accept a self-signed server certificate (testing only).</summary>
    public bool AcceptAnyServerCertificate { get; init; }

    /// <summary>Evaluate each downloaded global adapter on local validation data and report it.</summary>
    public bool EvaluateGlobal { get; init; } = true;

    /// <summary>Update codec ("f32", "int8", "topk"; null: what the server asks for). Lossy codecs use error feedback.</summary>
    public string? Compression { get; init; }

    /// <summary>Codec parameter: int8 chunk size or top-k's k (≤ 0: the codec's default).</summary>
    public int CompressionParameter { get; init; }

    /// <summary>How long a simulated dropout stays silent (longer than the server's liveness timeout, so it counts as a straggler).</summary>
    public TimeSpan DropoutSilence { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Simulated unreliability: for a round, whether this client vanishes (before training or half-way
    /// through its upload) and for how long it stays silent.</summary>
    public Func<int, FlDropout>? Dropout { get; init; }
}

/// <summary>How a simulated client drops out of a round.</summary>
public enum FlDropout
{
    None, BeforeTraining, MidUpload,
    /// <summary>Secure aggregation only: vanishes after sharing its keys, before uploading its masked input.</summary>
    BeforeMasking,
    /// <summary>Secure aggregation only: vanishes after uploading its masked input, before answering the unmask request.</summary>
    AfterMasking,
}

/// <summary>What a client's run did.</summary>
public sealed record FlClientSummary(int RoundsTrained, int Accepted, int Dropped, IReadOnlyList<string> Rejections, long LastGlobalVersion);

/// <summary>
/// A federated client: enrols with a token (or reuses an identity), then loops: ask for a task, download the
/// global adapter (streamed chunks), train locally (<see cref="ILocalTrainer"/>), upload the change resumably
/// (chunks at offsets; after a dropped connection it asks the server how much arrived and continues), report
/// the evaluation of the global adapter. Transient failures (server restarting) are retried for
/// <see cref="FlClientOptions.RetryFor"/>; rejections are recorded and the loop goes on.
/// </summary>
public sealed partial class FlClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly FederatedLearning.FederatedLearningClient _rpc;
    private readonly ILocalTrainer _trainer;
    private ErrorFeedback? _feedback;
    private (int Round, string UploadId, byte[] Payload, UploadHeader Header)? _pending;

    public FlClient(FlClientOptions options, ILocalTrainer trainer)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(trainer);
        if (options.ChunkBytes <= 0 || options.ChunkBytes > FlServer.MaxChunkBytes)
            throw new ArgumentException($"FlClient: ChunkBytes = {options.ChunkBytes} must be in (0, {FlServer.MaxChunkBytes}]", nameof(options));
        Options = options;
        _trainer = trainer;
        ClientId = options.ClientId;
        Credential = options.Credential;
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (options.AcceptAnyServerCertificate)
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        _channel = GrpcChannel.ForAddress(options.Server, new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = FlServer.MaxChunkBytes + (64 << 10),
            MaxSendMessageSize = FlServer.MaxChunkBytes + (64 << 10),
        });
        _rpc = new FederatedLearning.FederatedLearningClient(_channel);
    }

    public FlClientOptions Options { get; }

    /// <summary>This client's id (after enrolment).</summary>
    public string? ClientId { get; private set; }

    /// <summary>This client's secret (after enrolment; keep it to reconnect as the same client).</summary>
    public string? Credential { get; private set; }

    /// <summary>Enrols with the token unless an identity is already set.</summary>
    public async Task EnrolAsync(CancellationToken ct = default)
    {
        if (ClientId is not null && Credential is not null) return;
        if (Options.Token is null) throw new InvalidOperationException("FlClient: no enrolment token and no client identity");
        var reply = await Retry(() => _rpc.EnrolAsync(new EnrolRequest { Token = Options.Token, DisplayName = Options.DisplayName, NumExamples = _trainer.NumExamples },
            cancellationToken: ct).ResponseAsync, ct).ConfigureAwait(false);
        (ClientId, Credential) = (reply.ClientId, reply.Credential);
    }

    /// <summary>Runs rounds until the server says it is done (or <paramref name="ct"/> is cancelled).</summary>
    public async Task<FlClientSummary> RunAsync(CancellationToken ct = default)
    {
        await EnrolAsync(ct).ConfigureAwait(false);
        int trained = 0, accepted = 0, dropped = 0;
        long version = 0;
        var rejections = new List<string>();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var task = await GetTaskAsync(ct).ConfigureAwait(false);
            if (task.Kind == TaskKind.Done) { version = task.GlobalVersion; break; }
            if (task.Kind != TaskKind.Train)
            {
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(task.RetryAfterSeconds, 0.05, 10)), ct).ConfigureAwait(false);
                continue;
            }
            version = task.GlobalVersion;
            UploadReply reply;
            if (_pending is { } p && p.Round == task.Round)
                reply = await UploadPayloadAsync(p.Header, p.Payload, null, ct).ConfigureAwait(false); // came back: resume the upload
            else
            {
                var drop = Options.Dropout?.Invoke(task.Round) ?? FlDropout.None;
                if (drop == FlDropout.BeforeTraining) { dropped++; await Silence(ct).ConfigureAwait(false); continue; }
                var layout = FlServer.FromProto(task.Layout);
                float[] global = await DownloadGlobalAsync(task.GlobalVersion, layout, ct).ConfigureAwait(false);
                if (Options.EvaluateGlobal && _trainer.Evaluate(layout, global) is { } eval)
                    await ReportEvalAsync(task.Round, task.GlobalVersion, _trainer.NumExamples, eval, ct).ConfigureAwait(false);
                var fit = FitOf(task);
                LocalFitResult result;
                using (var beat = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    var heartbeat = HeartbeatLoop(task.Round, beat.Token);
                    try { result = await Task.Run(() => _trainer.Fit(new LocalFitRequest(task.Round, task.GlobalVersion, layout, global, fit), ct), ct).ConfigureAwait(false); }
                    finally { await beat.CancelAsync().ConfigureAwait(false); await heartbeat.ConfigureAwait(false); }
                }
                trained++;
                if (task.Privacy is { LocalNoiseMultiplier: > 0, LocalClipNorm: > 0 } dp) // local DP: clip and noise before anything leaves the device
                    Privacy.GaussianMechanism.PrivatizeLocally(result.Delta, dp.LocalClipNorm, dp.LocalNoiseMultiplier,
                        new EdgeTune.Tensors.Rng(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8))));
                if (task.SecureAggregation is { Enabled: true })
                {
                    var (ok, why) = await SecureAggregateAsync(task, layout, result, drop, ct).ConfigureAwait(false);
                    if (ok) accepted++;
                    else if (why is null) { dropped++; await Silence(ct).ConfigureAwait(false); }
                    else rejections.Add($"round {task.Round}: {why}");
                    continue;
                }
                string codec = Options.Compression ?? (UpdateCodec.Names.Contains(task.UpdateEncoding) ? task.UpdateEncoding : UpdateCodec.Float32);
                byte[] payload = Encode(codec, result.Delta);
                var header = Header(task.Round, task.GlobalVersion, payload, result.NumExamples, result.Metrics, codec);
                _pending = (task.Round, header.UploadId, payload, header);
                if (drop == FlDropout.MidUpload)
                {
                    await UploadPayloadAsync(header, payload, payload.Length / 2, ct).ConfigureAwait(false);
                    dropped++;
                    await Silence(ct).ConfigureAwait(false);
                    continue;
                }
                reply = await UploadPayloadAsync(header, payload, null, ct).ConfigureAwait(false);
            }
            _pending = null;
            if (reply.Status == UploadStatus.Accepted) accepted++;
            else rejections.Add($"round {task.Round}: {reply.Reason}");
        }
        return new FlClientSummary(trained, accepted, dropped, rejections, version);
    }

    private byte[] Encode(string codec, float[] delta)
    {
        if (codec == UpdateCodec.Float32) return UpdateCodec.EncodeFloat32(delta);
        if (_feedback is null || _feedback.Codec != codec || _feedback.Residual.Length != delta.Length)
            _feedback = new ErrorFeedback(delta.Length, codec, Options.CompressionParameter);
        return _feedback.Compress(delta);
    }

    /// <summary>A dropped-out client stays silent long enough for the server to count it as a straggler.</summary>
    private Task Silence(CancellationToken ct) => Task.Delay(Options.DropoutSilence, ct);

    private static Aggregation.FitInstructions FitOf(TaskReply t) => new()
    {
        LocalSteps = t.Fit.LocalSteps, LearningRate = t.Fit.LearningRate, BatchSize = t.Fit.BatchSize,
        SequenceLength = t.Fit.SequenceLength, ProximalMu = t.Fit.ProximalMu, Seed = t.Fit.Seed,
    };

    private async Task HeartbeatLoop(int round, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(Options.HeartbeatInterval, ct).ConfigureAwait(false);
                try { await _rpc.HeartbeatAsync(new HeartbeatRequest { Round = round }, Auth(), cancellationToken: ct).ResponseAsync.ConfigureAwait(false); }
                catch (RpcException) { } // a missed heartbeat is not fatal
            }
        }
        catch (OperationCanceledException) { }
    }

    // ---------------- single calls (public for apps and tests) ----------------

    public Task<TaskReply> GetTaskAsync(CancellationToken ct = default) =>
        Retry(() => _rpc.GetTaskAsync(new GetTaskRequest(), Auth(), cancellationToken: ct).ResponseAsync, ct);

    public Task<HeartbeatReply> HeartbeatAsync(CancellationToken ct = default) =>
        Retry(() => _rpc.HeartbeatAsync(new HeartbeatRequest(), Auth(), cancellationToken: ct).ResponseAsync, ct);

    public Task<Ack> ReportEvalAsync(int round, long version, long numExamples, IReadOnlyDictionary<string, double> metrics, CancellationToken ct = default)
    {
        var report = new EvalReport { Round = round, GlobalVersion = version, NumExamples = numExamples };
        foreach (var (k, v) in metrics) report.Metrics[k] = v;
        return Retry(() => _rpc.ReportEvalAsync(report, Auth(), cancellationToken: ct).ResponseAsync, ct);
    }

    /// <summary>Downloads a global version (streamed chunks) and checks its size against the layout.</summary>
    public async Task<float[]> DownloadGlobalAsync(long version, UpdateLayout layout, CancellationToken ct = default)
    {
        byte[] bytes = await Retry(async () =>
        {
            using var call = _rpc.DownloadGlobal(new DownloadRequest { GlobalVersion = version }, Auth(), cancellationToken: ct);
            using var ms = new MemoryStream();
            long total = -1;
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (chunk.Offset != ms.Length) throw new InvalidDataException($"global version {version}: chunk at offset {chunk.Offset}, expected {ms.Length}");
                if (total < 0) total = chunk.TotalBytes;
                if (total != layout.TotalLength * 4) throw new InvalidDataException($"global version {version}: {total} bytes, the layout needs {layout.TotalLength * 4}");
                if (ms.Length + chunk.Data.Length > total) throw new InvalidDataException($"global version {version}: more than the announced {total} bytes");
                ms.Write(chunk.Data.Span);
            }
            return ms.ToArray();
        }, ct).ConfigureAwait(false);
        return VectorBytes.ToFloats(bytes, layout.TotalLength);
    }

    /// <summary>A header for <paramref name="payload"/> with a fresh upload id.</summary>
    public static UploadHeader Header(int round, long version, byte[] payload, long numExamples, IReadOnlyDictionary<string, double>? metrics = null, string encoding = "f32")
    {
        var h = new UploadHeader
        {
            UploadId = "u" + Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant(), Round = round, GlobalVersion = version,
            TotalBytes = payload.Length, NumExamples = numExamples, Encoding = encoding, Sha256 = ByteString.CopyFrom(SHA256.HashData(payload)),
        };
        if (metrics is not null) foreach (var (k, v) in metrics) h.Metrics[k] = v;
        return h;
    }

    /// <summary>Where an upload stands on the server (null when the server has never seen it).</summary>
    public async Task<QueryUploadReply?> QueryUploadAsync(string uploadId, CancellationToken ct = default)
    {
        try { return await Retry(() => _rpc.QueryUploadAsync(new QueryUploadRequest { UploadId = uploadId }, Auth(), cancellationToken: ct).ResponseAsync, ct).ConfigureAwait(false); }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { return null; }
    }

    /// <summary>
    /// Uploads <paramref name="payload"/> under <paramref name="header"/>, continuing from what the server already holds;
    /// a broken connection is resumed after asking the server. With <paramref name="stopAfterBytes"/> the connection is
    /// cut once that many bytes were sent (simulating a client that drops) and the partial state is returned.
    /// </summary>
    public async Task<UploadReply> UploadPayloadAsync(UploadHeader header, byte[] payload, long? stopAfterBytes = null, CancellationToken ct = default)
    {
        var deadline = DateTime.UtcNow + Options.RetryFor;
        while (true)
        {
            var state = await QueryUploadAsync(header.UploadId, ct).ConfigureAwait(false);
            if (state is { Status: UploadStatus.Accepted }) return new UploadReply { Status = UploadStatus.Accepted, BytesReceived = state.BytesReceived };
            if (state is { Status: UploadStatus.Rejected }) return new UploadReply { Status = UploadStatus.Rejected, Reason = state.Reason };
            long offset = state?.BytesReceived ?? 0;
            using var cut = CancellationTokenSource.CreateLinkedTokenSource(ct);
            try
            {
                using var call = _rpc.UploadUpdate(Auth(), cancellationToken: cut.Token);
                bool answered = false;
                try
                {
                    await call.RequestStream.WriteAsync(new UploadMessage { Header = header }, cut.Token).ConfigureAwait(false);
                    while (offset < payload.Length)
                    {
                        int n = (int)Math.Min(Options.ChunkBytes, payload.Length - offset);
                        if (stopAfterBytes is long stop && offset + n > stop) n = (int)Math.Max(0, stop - offset);
                        if (n == 0) break;
                        await call.RequestStream.WriteAsync(new UploadMessage { Chunk = new DataChunk { Offset = offset, Data = ByteString.CopyFrom(payload, (int)offset, n) } }, cut.Token).ConfigureAwait(false);
                        offset += n;
                    }
                }
                catch (Exception e) when (e is RpcException { StatusCode: StatusCode.OK } or IOException) { answered = true; } // the server answered (e.g. rejected: the round closed) or reset the stream before the last chunk
                if (answered)
                {
                    var early = await call.ResponseAsync.ConfigureAwait(false);
                    if (early.Status != UploadStatus.Incomplete) return early;
                    continue;
                }
                if (stopAfterBytes is not null && offset < payload.Length)
                {
                    // let the sent chunks land (as they would before a real connection loss), then drop the connection
                    QueryUploadReply? seen = null;
                    for (int i = 0; i < 100; i++)
                    {
                        seen = await QueryUploadAsync(header.UploadId, ct).ConfigureAwait(false);
                        if (seen is not null && (seen.Status != UploadStatus.Incomplete || seen.BytesReceived >= offset)) break;
                        await Task.Delay(20, ct).ConfigureAwait(false);
                    }
                    await cut.CancelAsync().ConfigureAwait(false);
                    try { await call.ResponseAsync.ConfigureAwait(false); } catch (RpcException) { }
                    return seen is null ? new UploadReply { Status = UploadStatus.Incomplete }
                        : new UploadReply { Status = seen.Status, BytesReceived = seen.BytesReceived, Reason = seen.Reason };
                }
                await call.RequestStream.CompleteAsync().ConfigureAwait(false);
                var reply = await call.ResponseAsync.ConfigureAwait(false);
                if (reply.Status != UploadStatus.Incomplete) return reply;
            }
            catch (RpcException e) when (Transient(e.StatusCode) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested)
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
            }
        }
    }

    // ---------------- plumbing ----------------

    private Metadata Auth()
    {
        if (ClientId is null || Credential is null) throw new InvalidOperationException("FlClient: not enrolled");
        return new Metadata { { FlServer.ClientIdHeader, ClientId }, { FlServer.CredentialHeader, Credential } };
    }

    private static bool Transient(StatusCode s) => s is StatusCode.Unavailable or StatusCode.Internal or StatusCode.DeadlineExceeded
        or StatusCode.ResourceExhausted or StatusCode.Unknown or StatusCode.Cancelled;

    /// <summary>Runs <paramref name="call"/>, retrying transient failures (server restarting, rate limit) with backoff for <see cref="FlClientOptions.RetryFor"/>.</summary>
    private async Task<T> Retry<T>(Func<Task<T>> call, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Options.RetryFor;
        int delay = 100;
        while (true)
        {
            try { return await call().ConfigureAwait(false); }
            catch (RpcException e) when (Transient(e.StatusCode) && DateTime.UtcNow < deadline && !ct.IsCancellationRequested)
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Math.Min(2000, delay * 2);
            }
        }
    }

    public void Dispose() => _channel.Dispose();
}
