using EdgeTune.Federated.Protocol;

namespace EdgeTune.Federated.Server;

/// <summary>
/// What the gRPC endpoint asks of the federated server. <see cref="LocalFlService"/> calls a <see cref="FlServer"/> in
/// this process; on Orleans (<see cref="Cluster.GrainFlService"/>) the calls go to the task's coordinator grain, which
/// runs the same <see cref="FlServer"/> logic on whichever silo it is activated. Refusals are
/// <see cref="FlRejectedException"/>s either way.
/// </summary>
internal interface IFlService
{
    Task<EnrolReply> EnrolAsync(string token, string displayName, long numExamples, string peer);
    Task<string> AuthenticateAsync(string? clientId, string? credential);
    Task<TaskReply> GetTaskAsync(string clientId);
    /// <summary>A global version's bytes (read-only: callers must not write to them).</summary>
    Task<ReadOnlyMemory<byte>> GlobalBytesAsync(long version);
    Task<UploadReply> BeginUploadAsync(string clientId, UploadHeader header);
    Task<UploadReply> AppendChunkAsync(string clientId, string uploadId, long offset, ReadOnlyMemory<byte> data);
    Task<QueryUploadReply> QueryUploadAsync(string clientId, string uploadId);
    Task ReportEvalAsync(string clientId, EvalReport report);
    Task<HeartbeatReply> HeartbeatAsync(string clientId);
    Task SendSecAggAsync(string clientId, SecAggMessage message);
    Task<FetchSecAggReply> FetchSecAggAsync(string clientId, FetchSecAggRequest request);
    /// <summary>Lets the server close a round that an accepted upload may have completed.</summary>
    Task TickAsync();
}

/// <summary>A <see cref="FlServer"/> in this process behind <see cref="IFlService"/>.</summary>
internal sealed class LocalFlService(FlServer server) : IFlService
{
    public Task<EnrolReply> EnrolAsync(string token, string displayName, long numExamples, string peer) => Task.FromResult(server.Enrol(token, displayName, numExamples, peer));
    public Task<string> AuthenticateAsync(string? clientId, string? credential) => Task.FromResult(server.Authenticate(clientId, credential));
    public Task<TaskReply> GetTaskAsync(string clientId) => Task.FromResult(server.GetTask(clientId));
    public Task<ReadOnlyMemory<byte>> GlobalBytesAsync(long version) => Task.FromResult(server.GlobalBytesShared(version));
    public Task<UploadReply> BeginUploadAsync(string clientId, UploadHeader header) => Task.FromResult(server.BeginUpload(clientId, header));
    public Task<UploadReply> AppendChunkAsync(string clientId, string uploadId, long offset, ReadOnlyMemory<byte> data) =>
        Task.FromResult(server.AppendChunk(clientId, uploadId, offset, data.Span));
    public Task<QueryUploadReply> QueryUploadAsync(string clientId, string uploadId) => Task.FromResult(server.QueryUpload(clientId, uploadId));
    public Task ReportEvalAsync(string clientId, EvalReport report)
    {
        server.ReportEval(clientId, report);
        return Task.CompletedTask;
    }
    public Task<HeartbeatReply> HeartbeatAsync(string clientId) => Task.FromResult(server.Heartbeat(clientId));
    public Task SendSecAggAsync(string clientId, SecAggMessage message)
    {
        server.SendSecAgg(clientId, message);
        return Task.CompletedTask;
    }
    public Task<FetchSecAggReply> FetchSecAggAsync(string clientId, FetchSecAggRequest request) => Task.FromResult(server.FetchSecAgg(clientId, request));
    public Task TickAsync()
    {
        server.Tick();
        return Task.CompletedTask;
    }
}
