using EdgeTune.Federated.Storage;

namespace EdgeTune.Tests.Federated.Storage;

/// <summary>A state store that passes every call to <paramref name="inner"/>; tests override a member to inject a failure
/// (a dropped database connection, a full disk) at one exact point of the server's work.</summary>
internal class ForwardingStateStore(IFlStateStore inner) : IFlStateStore
{
    public virtual string Folder => inner.Folder;
    public virtual string Location => inner.Location;
    public virtual byte[]? GetMeta(string key) => inner.GetMeta(key);
    public virtual string? GetMetaString(string key) => inner.GetMetaString(key);
    public virtual void InitGlobal(string layoutJson, byte[] vector) => inner.InitGlobal(layoutJson, vector);
    public virtual void AddClient(StoredClient c) => inner.AddClient(c);
    public virtual StoredClient? GetClient(string id) => inner.GetClient(id);
    public virtual int ClientCount() => inner.ClientCount();
    public virtual void AddRound(StoredRound r) => inner.AddRound(r);
    public virtual void ExtendRound(int round, double deadline, int target) => inner.ExtendRound(round, deadline, target);
    public virtual StoredRound? GetRound(int round) => inner.GetRound(round);
    public virtual StoredRound? LatestRound() => inner.LatestRound();
    public virtual IReadOnlyList<StoredRound> Rounds() => inner.Rounds();
    public virtual void CompleteRound(int round, long version, byte[]? vector, string metricsJson, byte[]? strategyState) =>
        inner.CompleteRound(round, version, vector, metricsJson, strategyState);
    public virtual void SetRoundMetrics(int round, string metricsJson) => inner.SetRoundMetrics(round, metricsJson);
    public virtual bool Assign(int round, string clientId) => inner.Assign(round, clientId);
    public virtual bool IsAssigned(int round, string clientId) => inner.IsAssigned(round, clientId);
    public virtual IReadOnlyList<(string ClientId, double AssignedAt)> Assignments(int round) => inner.Assignments(round);
    public virtual int DropUndelivered(int round) => inner.DropUndelivered(round);
    public virtual void AddUpload(StoredUpload u) => inner.AddUpload(u);
    public virtual StoredUpload? GetUpload(string uploadId) => inner.GetUpload(uploadId);
    public virtual void Reject(string? uploadId, string? clientId, int? round, string reason) => inner.Reject(uploadId, clientId, round, reason);
    public virtual IReadOnlyList<(string? UploadId, string? ClientId, int? Round, string Reason)> Rejections(int? round = null) => inner.Rejections(round);
    public virtual string PartPath(string uploadId) => inner.PartPath(uploadId);
    public virtual bool Accept(StoredUpload u, ReadOnlySpan<byte> payload) => inner.Accept(u, payload);
    public virtual int AcceptedCount(int round) => inner.AcceptedCount(round);
    public virtual bool HasUpdate(int round, string clientId) => inner.HasUpdate(round, clientId);
    public virtual IReadOnlyList<StoredUpdate> Updates(int round) => inner.Updates(round);
    public virtual IReadOnlyList<string> UpdateIds(int round) => inner.UpdateIds(round);
    public virtual StoredUpdate? GetUpdate(string uploadId) => inner.GetUpdate(uploadId);
    public virtual byte[]? GetGlobal(long version) => inner.GetGlobal(version);
    public virtual long? LatestGlobalVersion() => inner.LatestGlobalVersion();
    public virtual void AddEval(int round, string clientId, long version, long numExamples, IReadOnlyDictionary<string, double> metrics) =>
        inner.AddEval(round, clientId, version, numExamples, metrics);
    public virtual IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> Evals(long version) => inner.Evals(version);
    public virtual void AddSecAgg(int round, int stage, string from, string to, byte[] payload) => inner.AddSecAgg(round, stage, from, to, payload);
    public virtual IReadOnlyList<(string From, string To, byte[] Payload)> SecAggFor(int round, int stage, string to) => inner.SecAggFor(round, stage, to);
    public virtual void Dispose() => inner.Dispose();
}
