using System.Security.Cryptography;
using System.Text.Json;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Diagnostics;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server.Internal;
using EdgeTune.Federated.Server.Sharding;
using EdgeTune.Federated.Storage;
using EdgeTune.Federated.UpdateCompression;
using Grpc.Core;

namespace EdgeTune.Federated.Server;

/// <summary>Resumable uploads: a header registers the upload (idempotent by upload id), chunks append to its part
/// file at the exact offset, and the last byte triggers decoding, validation and acceptance.</summary>
public sealed partial class FlServer
{
    /// <summary>Registers (or finds again) an upload; the reply says how many bytes the server holds.</summary>
    public UploadReply BeginUpload(string clientId, UploadHeader header)
    {
        ArgumentNullException.ThrowIfNull(header);
        if (!UploadIdPattern().IsMatch(header.UploadId ?? ""))
            throw new FlRejectedException(StatusCode.InvalidArgument, "upload_id must be 8-64 characters of [A-Za-z0-9_-]");
        lock (_lock)
        {
            ThrowIfDisposed();
            if (_store.GetUpload(header.UploadId!) is { } existing)
            {
                if (existing.ClientId != clientId) throw new FlRejectedException(StatusCode.PermissionDenied, "upload id belongs to another client");
                if (existing.TotalBytes != header.TotalBytes || !existing.Sha256.AsSpan().SequenceEqual(header.Sha256.Span))
                    throw new FlRejectedException(StatusCode.InvalidArgument, "upload id reused with a different payload (size or digest differ)");
                return StateOf(existing);
            }
            var problem = HeaderProblem(clientId, header);
            string? reason = problem?.Reason;
            var metrics = header.Metrics.Count <= 64 && header.Metrics.All(kv => kv.Key.Length <= 64 && double.IsFinite(kv.Value))
                ? JsonSerializer.Serialize(header.Metrics.ToDictionary(kv => kv.Key, kv => kv.Value)) : "{}";
            var upload = new StoredUpload(header.UploadId!, clientId, header.Round, header.GlobalVersion, header.TotalBytes, header.NumExamples,
                header.Encoding ?? "", header.Sha256.ToByteArray(), metrics, reason is null ? "receiving" : "rejected", reason);
            _store.AddUpload(upload);
            if (reason is not null)
            {
                _store.Reject(upload.UploadId, clientId, header.Round, reason);
                Telemetry.RecordRejected(problem!.Value.Code);
                return new UploadReply { Status = UploadStatus.Rejected, Reason = reason };
            }
            File.WriteAllBytes(_store.PartPath(upload.UploadId), []);
            return new UploadReply { Status = UploadStatus.Incomplete, BytesReceived = 0 };
        }
    }

    /// <summary>Why a new upload's header is refused (a code for metrics and a sentence), or null.</summary>
    private (string Code, string Reason)? HeaderProblem(string clientId, UploadHeader h)
    {
        if (h.TotalBytes <= 0 || h.TotalBytes > MaxUpdateBytes) return (Validation.UpdateRejection.TooLarge, $"update of {h.TotalBytes} bytes is outside (0, {MaxUpdateBytes}] for this layout");
        if (Options.SecureAggregation)
        {
            if (h.Encoding != MaskedEncoding) return (FederatedTelemetry.RejectedEncoding, $"this server runs secure aggregation: updates must be masked inputs (encoding '{MaskedEncoding}'), not '{h.Encoding}'");
        }
        else if (!UpdateCodec.Names.Contains(h.Encoding)) return (FederatedTelemetry.RejectedEncoding, $"encoding '{h.Encoding}' is not accepted (expected one of {string.Join(", ", UpdateCodec.Names)})");
        if (h.Sha256.Length != 32) return (FederatedTelemetry.RejectedDigest, "sha256 must be 32 bytes");
        if (h.NumExamples < 0 || h.NumExamples > 1_000_000_000) return (Validation.UpdateRejection.BadExampleCount, $"num_examples {h.NumExamples} is out of range");
        var round = _store.GetRound(h.Round);
        if (round is null) return (FederatedTelemetry.RejectedUnknownRound, $"round {h.Round} does not exist");
        if (!round.Open) return (FederatedTelemetry.RejectedLate, $"late: round {h.Round} already closed (global version {round.ResultVersion})");
        if (h.GlobalVersion != round.GlobalVersion) return (FederatedTelemetry.RejectedStale, $"stale: trained from global version {h.GlobalVersion}, round {h.Round} uses {round.GlobalVersion}");
        if (!_store.IsAssigned(h.Round, clientId)) return (FederatedTelemetry.RejectedNotSelected, $"not selected for round {h.Round}");
        if (_store.HasUpdate(h.Round, clientId)) return (FederatedTelemetry.RejectedDuplicate, $"already contributed an update to round {h.Round}");
        return null;
    }

    private UploadReply StateOf(StoredUpload u) => u.Status switch
    {
        "accepted" => new UploadReply { Status = UploadStatus.Accepted, BytesReceived = u.TotalBytes },
        "rejected" => new UploadReply { Status = UploadStatus.Rejected, Reason = u.Reason ?? "" },
        _ => new UploadReply { Status = UploadStatus.Incomplete, BytesReceived = PartLength(u.UploadId) },
    };

    private long PartLength(string uploadId)
    {
        var f = new FileInfo(_store.PartPath(uploadId));
        return f.Exists ? f.Length : 0;
    }

    /// <summary>Appends a chunk at <paramref name="offset"/> (bytes the server already holds are skipped). A chunk beyond what
    /// the server holds is not taken: the reply says Incomplete with the bytes it holds, where the client resumes (the server
    /// lost the tail it had said it held: a coordinator that moved to another machine, a part file cut by a crash). When the
    /// upload is complete it is finished at once.</summary>
    public UploadReply AppendChunk(string clientId, string uploadId, long offset, ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxChunkBytes) throw new FlRejectedException(StatusCode.InvalidArgument, $"chunk of {data.Length} bytes exceeds {MaxChunkBytes}");
        lock (_lock)
        {
            ThrowIfDisposed();
            var u = OwnUpload(clientId, uploadId);
            if (u.Status != "receiving") return StateOf(u);
            _lastSeen[clientId] = FlStateStore.Now(); // a client sending its update is alive, however long the upload takes
            long have = PartLength(uploadId);
            if (offset > have) return new UploadReply { Status = UploadStatus.Incomplete, BytesReceived = have };
            if (offset < 0) throw new FlRejectedException(StatusCode.OutOfRange, $"negative offset {offset}");
            long skip = have - offset;
            if (skip < data.Length)
            {
                var fresh = data[(int)skip..];
                if (have + fresh.Length > u.TotalBytes)
                {
                    string reason = $"update is larger than its declared {u.TotalBytes} bytes";
                    _store.Reject(uploadId, clientId, u.Round, reason);
                    Telemetry.RecordRejected(Validation.UpdateRejection.TooLarge);
                    DeletePart(uploadId);
                    return new UploadReply { Status = UploadStatus.Rejected, Reason = reason };
                }
                // no fsync: a part file only tells a resuming client where to go on. The update becomes durable when it is
                // accepted (its payload is committed to the store with fsync, after the digest of all its bytes is checked).
                // A machine crash that loses the tail of a part file makes the server report fewer bytes and the client sends
                // them again; bytes that come back wrong fail the digest, so the upload is refused, never accepted. A process
                // kill loses nothing (the bytes are in the page cache). An fsync per 1 MiB chunk cost 5-50 ms inside the
                // coordinator's turn, which every other call of the task waits for.
                // OpenOrCreate: the part file may be missing where the upload's record is not (a coordinator that moved to
                // another machine of a PostgreSQL cluster, whose part files stayed in the dead silo's folder: the server then
                // holds 0 bytes, says so, and the client sends the update again from its start)
                using (var part = File.OpenHandle(_store.PartPath(uploadId), FileMode.OpenOrCreate, FileAccess.Write, FileShare.None))
                    RandomAccess.Write(part, fresh, have);
                have += fresh.Length;
            }
            return have == u.TotalBytes ? FinishLocked(u) : new UploadReply { Status = UploadStatus.Incomplete, BytesReceived = have };
        }
    }

    /// <summary>Where an upload stands (for a client resuming after a dropped connection).</summary>
    public QueryUploadReply QueryUpload(string clientId, string uploadId)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
            var s = StateOf(OwnUpload(clientId, uploadId));
            return new QueryUploadReply { Status = s.Status, BytesReceived = s.BytesReceived, Reason = s.Reason };
        }
    }

    private StoredUpload OwnUpload(string clientId, string uploadId)
    {
        var u = _store.GetUpload(uploadId ?? "") ?? throw new FlRejectedException(StatusCode.NotFound, $"upload '{uploadId}' is unknown; send its header first");
        if (u.ClientId != clientId) throw new FlRejectedException(StatusCode.PermissionDenied, "upload id belongs to another client");
        return u;
    }

    /// <summary>All bytes are in: check digest, decode, validate, then accept (one transaction) or reject with a reason.
    /// The payload and its decoded vector live in two buffers the server reuses for every upload (calls are serialised by
    /// the lock), so finishing an upload allocates nothing of the model's size.</summary>
    private UploadReply FinishLocked(StoredUpload u)
    {
        var payload = ReadPartLocked(u);
        string? reason = null, code = null;
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(u.Sha256)) (reason, code) = ("sha256 of the received bytes does not match the header", FederatedTelemetry.RejectedDigest);
        var round = _store.GetRound(u.Round);
        if (reason is null && round is not { Open: true }) (reason, code) = ($"late: round {u.Round} closed while the update was uploading", FederatedTelemetry.RejectedLate);
        if (reason is null && Options.SecureAggregation)
        {
            (reason, code) = u.Encoding == MaskedEncoding ? (ReceiveMaskedLocked(u, payload.ToArray()), FederatedTelemetry.RejectedSecureAggregation)
                : ($"encoding '{u.Encoding}' is not a masked input", FederatedTelemetry.RejectedEncoding);
            if (reason is null && !_store.Accept(u, payload)) (reason, code) = ($"already contributed an update to round {u.Round}", FederatedTelemetry.RejectedDuplicate);
        }
        else if (reason is null)
        {
            float[]? delta = null;
            try
            {
                if (UpdateCodec.CodecOf(payload) != u.Encoding) throw new FormatException($"payload is encoded with '{UpdateCodec.CodecOf(payload)}', the header declares '{u.Encoding}'");
                delta = _deltaBuffer ??= new float[Layout.TotalLength];
                UpdateCodec.DecodeInto(payload, delta);
            }
            catch (FormatException e) { (reason, code, delta) = (e.Message, FederatedTelemetry.RejectedFormat, null); }
            if (delta is not null && _validator.Check(new ClientUpdate(u.ClientId, delta, u.NumExamples)) is { } rejection)
                (reason, code) = (rejection.ToString(), rejection.Code);
            if (reason is null && !_store.Accept(u, payload)) (reason, code) = ($"already contributed an update to round {u.Round}", FederatedTelemetry.RejectedDuplicate);
            if (reason is null) FoldAcceptedLocked(u, delta!); // folds read the buffer during the call and keep no reference to it
        }
        DeletePart(u.UploadId);
        if (reason is not null)
        {
            _store.Reject(u.UploadId, u.ClientId, u.Round, reason);
            Telemetry.RecordRejected(code!);
            return new UploadReply { Status = UploadStatus.Rejected, Reason = reason, BytesReceived = payload.Length };
        }
        Telemetry.RecordAccepted();
        return new UploadReply { Status = UploadStatus.Accepted, BytesReceived = payload.Length };
    }

    /// <summary>A complete upload's bytes, read into the reused payload buffer (valid until the next call).</summary>
    private ReadOnlySpan<byte> ReadPartLocked(StoredUpload u)
    {
        if (_payloadBuffer is null || _payloadBuffer.Length < u.TotalBytes) _payloadBuffer = new byte[MaxUpdateBytes];
        var span = _payloadBuffer.AsSpan(0, checked((int)u.TotalBytes));
        using var fs = new FileStream(_store.PartPath(u.UploadId), FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        fs.ReadExactly(span);
        return span;
    }

    private void DeletePart(string uploadId)
    {
        try { File.Delete(_store.PartPath(uploadId)); }
        catch (IOException) { }
    }

    // ---------------- round completion ----------------

    /// <summary>Closes the open round when it is due (all delivered; quorum met and no live straggler; or deadline),
    /// aggregates and stores the new version; then evaluates it outside the lock and raises <see cref="RoundCompleted"/>.
    /// Called by the server's timer every 100 ms and after uploads.</summary>
    public void Tick()
    {
        if (Interlocked.Exchange(ref _ticking, 1) == 1) return;
        FlRoundResult? result = null;
        try
        {
            float[]? global = null;
            lock (_lock)
            {
                if (_disposed) return;
                result = TryCompleteLocked();
                if (result is not null) global = (float[])_global.Clone();
                else if (IsFinished()) _done.TrySetResult(); // completion is signalled after the last round's event
            }
            if (result is null) return;
            _roundSpan ??= FederatedTelemetry.StartRound(result.Round, DateTimeOffset.UtcNow - result.Duration); // secure aggregation
            if (_evaluate is not null)
            {
                lock (_evalLock)
                {
                    if (_disposed) return;
                    var evaluation = FederatedTelemetry.StartChild(FederatedTelemetry.EvaluateSpanName, _roundSpan);
                    result = result with { Evaluation = _evaluate(global!) };
                    FederatedTelemetry.Stop(evaluation);
                }
                lock (_lock)
                {
                    if (_disposed) return;
                    _store.SetRoundMetrics(result.Round, JsonSerializer.Serialize(result, Json));
                }
            }
            Telemetry.RecordRound(result);
            FederatedTelemetry.EndRound(_roundSpan, result);
            _roundSpan = null;
            RoundCompleted?.Invoke(result);
            lock (_lock) if (!_disposed && IsFinished()) _done.TrySetResult();
        }
        catch (ObjectDisposedException) { }
        catch (Exception e) when (e is System.Data.Common.DbException or IOException or TimeoutException)
        {
            // the store failed (a PostgreSQL restart, a dropped connection, a full disk): nothing of the close was committed
            // and the strategy's state was put back, so the next tick (100 ms later) tries again; the server stays up
            Volatile.Write(ref _closeFailures, _closeFailures + 1);
            CloseFailed?.Invoke(e);
        }
        finally
        {
            if (_roundSpan is not null) // the round's version is stored, but the server stopped (or failed) before the end of Tick
            {
                FederatedTelemetry.EndRound(_roundSpan, null);
                _roundSpan = null;
            }
            Volatile.Write(ref _ticking, 0);
        }
    }

    private int _closeFailures;

    /// <summary>Round closes that failed in the store and were retried (diagnostics and tests).</summary>
    internal int CloseFailures => Volatile.Read(ref _closeFailures);

    /// <summary>Raised when a round's close fails in the state store (it is retried on the next tick): for the host's log.</summary>
    public event Action<Exception>? CloseFailed;

    private FlRoundResult? TryCompleteLocked()
    {
        var round = _store.LatestRound();
        if (round is not { Open: true }) return null;
        if (Options.SecureAggregation) return TryAdvanceSecAggLocked(round);
        double now = FlStateStore.Now();
        int accepted = _store.AcceptedCount(round.Round);
        var assigned = _store.Assignments(round.Round);
        string? closedBy = null;
        if (accepted >= round.Target) closedBy = "all-delivered";
        else if (accepted >= Options.Quorum && now - round.StartedAt >= Options.LivenessTimeout.TotalSeconds
                 && !assigned.Any(a => !_store.HasUpdate(round.Round, a.ClientId) && Alive(a.ClientId, now)))
            closedBy = "quorum-no-live-stragglers";
        else if (now >= round.Deadline)
        {
            if (accepted >= Options.Quorum) closedBy = "deadline";
            else
            {
                _store.DropUndelivered(round.Round);
                _store.ExtendRound(round.Round, now + Options.RoundDeadline.TotalSeconds, round.Target);
                return null;
            }
        }
        if (closedBy is null) return null;
        // a close that fails before its commit leaves the store as it was; the strategy's state (server optimiser moments,
        // privacy accountant) is put back too, so that the retry does not advance it twice
        byte[]? strategyBefore = _strategy.SaveState();
        try { return CloseLocked(round, closedBy, now, assigned); }
        catch
        {
            if (strategyBefore is not null) _strategy.LoadState(strategyBefore);
            throw;
        }
    }

    private FlRoundResult CloseLocked(StoredRound round, string closedBy, double now, IReadOnlyList<(string ClientId, double AssignedAt)> assigned)
    {
        _roundSpan = FederatedTelemetry.StartRound(round.Round, DateTimeOffset.FromUnixTimeMilliseconds((long)(round.StartedAt * 1000)));

        float[] next;
        int count;
        double lossSum = 0, lossWeight = 0;
        if (_shards is not null)
        {
            // the updates were folded into the shards as they were accepted: only the partial sums are in memory
            var aggregation = FederatedTelemetry.StartChild(FederatedTelemetry.AggregateSpanName, _roundSpan);
            var merged = MergeShardsLocked(round.Round, ref lossSum, ref lossWeight);
            count = merged.Count;
            next = merged.Complete();
            FederatedTelemetry.Stop(aggregation);
        }
        else
        {
            // robust strategies need every update at once: the round's updates are decoded one at a time into a scratch
            // file and read back by blocks of coordinates (at most UpdateBlocks.BudgetBytes of them in memory); a custom
            // strategy without column support gets them as a list in memory
            using var spill = new UpdateSpill(Path.Combine(_store.Folder, "closing-round.updates.tmp"), checked((int)Layout.TotalLength));
            var delta = _deltaBuffer ??= new float[Layout.TotalLength];
            foreach (string id in _store.UpdateIds(round.Round))
            {
                var s = _store.GetUpdate(id)!;
                UpdateCodec.DecodeInto(s.Payload, delta);
                spill.Append(s.ClientId, s.NumExamples, delta);
                AddLoss(JsonSerializer.Deserialize<Dictionary<string, double>>(s.MetricsJson, Json) ?? [], s.NumExamples, ref lossSum, ref lossWeight);
            }
            var aggregation = FederatedTelemetry.StartChild(FederatedTelemetry.AggregateSpanName, _roundSpan);
            next = _strategy is IColumnAggregator columns ? columns.Aggregate(round.Round, _global, spill)
                : _strategy.Aggregate(round.Round, _global, InMemory(spill));
            FederatedTelemetry.Stop(aggregation);
            count = spill.Count;
        }
        if (next.Length != _global.Length || next.Any(x => !float.IsFinite(x)))
            throw new InvalidOperationException($"FlServer: strategy '{_strategy.Name}' produced a non-finite or mis-sized global vector in round {round.Round}");
        var result = new FlRoundResult
        {
            Round = round.Round, Version = _version + 1, Selected = assigned.Count, Accepted = count,
            Rejected = _store.Rejections(round.Round).Count, MeanTrainLoss = lossWeight > 0 ? lossSum / lossWeight : double.NaN,
            Duration = TimeSpan.FromSeconds(now - round.StartedAt), ClosedBy = closedBy,
            Epsilon = _strategy is Privacy.DifferentialPrivacyStrategy dp ? dp.CurrentEpsilon : null,
        };
        CommitRound(round, next, result);
        return result;
    }

    /// <summary>The spilled updates as a list in memory (for strategies that only take lists).</summary>
    private static List<ClientUpdate> InMemory(UpdateSpill spill)
    {
        var list = new List<ClientUpdate>(spill.Count);
        for (int c = 0; c < spill.Count; c++)
        {
            var delta = new float[spill.Length];
            spill.ReadRow(c, delta);
            list.Add(new ClientUpdate(spill.ClientId(c), delta, spill.NumExamples(c)));
        }
        return list;
    }

    /// <summary>Clients' reported training loss, weighted by example count (at least 1).</summary>
    private static void AddLoss(IReadOnlyDictionary<string, double> metrics, long numExamples, ref double sum, ref double weight)
    {
        if (metrics.TryGetValue("train_loss", out double l)) { sum += l * Math.Max(1, numExamples); weight += Math.Max(1, numExamples); }
    }

    /// <summary>Folds a just-accepted update into its shard's running sum (streaming strategies). An update the strategy
    /// refuses, or a shard that cannot be reached, leaves it out of the shards: the round's close folds it from the store
    /// (and reports the strategy's error there), as when every update was aggregated at the close.</summary>
    private void FoldAcceptedLocked(StoredUpload u, float[] delta)
    {
        if (_shards is null) return;
        var metrics = JsonSerializer.Deserialize<Dictionary<string, double>>(u.MetricsJson, Json) ?? [];
        bool hasLoss = metrics.TryGetValue("train_loss", out double loss);
        try { _shards.Fold(u.Round, new ShardUpdate(u.UploadId, u.ClientId, u.NumExamples, delta, loss, hasLoss)); }
        catch (Exception e) when (e is ArgumentException or ShardUnavailableException) { }
    }

    /// <summary>
    /// The round's aggregation at its close: every shard's partial sum is merged when each upload id in it is an accepted
    /// update of the round not yet counted (the store decides what was accepted; a partial that disagrees is dropped
    /// whole); accepted updates no partial holds (a shard lost with its process, a restart, a refused fold) are decoded
    /// from the store and added one at a time. So each accepted update is counted exactly once.
    /// </summary>
    private IRoundAggregation MergeShardsLocked(int round, ref double lossSum, ref double lossWeight)
    {
        var merged = ((IStreamingAggregator)_strategy).Begin(round, _global);
        var accepted = _store.UpdateIds(round);
        var pending = new HashSet<string>(accepted, StringComparer.Ordinal);
        IReadOnlyList<ShardPartial> partials;
        try { partials = _shards!.Collect(round); }
        catch (ShardUnavailableException) { partials = []; }
        int fromShards = 0;
        foreach (var p in partials)
        {
            if (p.Round != round || p.UploadIds.Length != p.Sum.Count || !p.UploadIds.All(pending.Contains)
                || p.UploadIds.Distinct(StringComparer.Ordinal).Count() != p.UploadIds.Length) continue;
            merged.Merge(p.Sum);
            pending.ExceptWith(p.UploadIds);
            (lossSum, lossWeight) = (lossSum + p.LossSum, lossWeight + p.LossWeight);
            fromShards += p.UploadIds.Length;
        }
        var delta = _deltaBuffer ??= new float[Layout.TotalLength];
        foreach (string id in accepted)
        {
            if (!pending.Contains(id)) continue;
            var stored = _store.GetUpdate(id)!;
            UpdateCodec.DecodeInto(stored.Payload, delta);
            merged.Add(new ClientUpdate(stored.ClientId, delta, stored.NumExamples));
            AddLoss(JsonSerializer.Deserialize<Dictionary<string, double>>(stored.MetricsJson, Json) ?? [], stored.NumExamples, ref lossSum, ref lossWeight);
        }
        (LastCloseFromShards, LastCloseFromStore) = (fromShards, pending.Count);
        return merged;
    }

    /// <summary>Of the last closed round's updates: how many came in the shards' partial sums, how many were folded from
    /// the store at the close (diagnostics and tests).</summary>
    internal int LastCloseFromShards { get; private set; }

    internal int LastCloseFromStore { get; private set; }

    /// <summary>Bytes held by the open round's running aggregation (0 when there is none): O(model) per shard, whatever
    /// the number of accepted updates. For tests and diagnostics.</summary>
    internal long AggregationRetainedBytes { get { lock (_lock) return _shards?.RetainedBytes ?? 0; } }

    /// <summary>Updates folded into the shards so far in the open round.</summary>
    internal int AggregationCount { get { lock (_lock) return _shards?.Folded ?? 0; } }

    /// <summary>One transaction: the next global version, the closed round with its result, the strategy's state; then the
    /// in-memory global follows.</summary>
    private void CommitRound(StoredRound round, float[] next, FlRoundResult result)
    {
        _store.CompleteRound(round.Round, _version + 1, VectorBytes.ToBytes(next), JsonSerializer.Serialize(result, Json), _strategy.SaveState());
        _version++;
        _global = next;
        _globalBytes = null;
    }
}
