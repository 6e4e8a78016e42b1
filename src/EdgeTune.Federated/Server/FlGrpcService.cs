using EdgeTune.Federated.Protocol;
using Grpc.Core;

namespace EdgeTune.Federated.Server;

/// <summary>
/// The gRPC face of the federated server (<see cref="IFlService"/>: a <see cref="FlServer"/> in this process, or the
/// coordinator grain on Orleans): authenticates every call but Enrol from its metadata, maps
/// <see cref="FlRejectedException"/> to its status, and turns any other failure into Internal (logged through
/// <see cref="FlServerHost.Errors"/>) so that nothing a client sends brings the server down.
/// </summary>
internal sealed class FlGrpcService(IFlService server, Action<Exception>? onError) : FederatedLearning.FederatedLearningBase
{
    /// <summary>Global downloads streaming at once; later ones wait for a slot before writing. Each download in flight holds
    /// a serialised chunk (up to 1 MiB) in the transport's output buffer until the client's flow-control window takes it,
    /// so without this bound a round start where N clients download together held N MiB (about 1 GB at N = 1,000).</summary>
    internal const int DownloadsInFlight = 8;

    private readonly SemaphoreSlim _downloads = new(DownloadsInFlight);

    public override Task<EnrolReply> Enrol(EnrolRequest request, ServerCallContext context) =>
        Guard(() => server.EnrolAsync(request.Token, request.DisplayName, request.NumExamples, context.Peer ?? ""));

    public override Task<TaskReply> GetTask(GetTaskRequest request, ServerCallContext context) =>
        Guard(async () => await server.GetTaskAsync(await Auth(context).ConfigureAwait(false)).ConfigureAwait(false));

    public override Task DownloadGlobal(DownloadRequest request, IServerStreamWriter<DataChunk> responseStream, ServerCallContext context) =>
        Guard(async () =>
        {
            await Auth(context).ConfigureAwait(false);
            await _downloads.WaitAsync(context.CancellationToken).ConfigureAwait(false);
            try
            {
                var bytes = await server.GlobalBytesAsync(request.GlobalVersion).ConfigureAwait(false); // read-only and shared: chunks wrap it, nothing is copied
                for (int offset = 0; offset < bytes.Length || offset == 0; offset += FlServer.MaxChunkBytes)
                {
                    int n = Math.Min(FlServer.MaxChunkBytes, bytes.Length - offset);
                    await responseStream.WriteAsync(new DataChunk
                    {
                        Offset = offset, TotalBytes = bytes.Length, Data = Google.Protobuf.UnsafeByteOperations.UnsafeWrap(bytes.Slice(offset, n)),
                    }, context.CancellationToken).ConfigureAwait(false);
                    if (bytes.Length == 0) break;
                }
            }
            finally { _downloads.Release(); }
            return 0;
        });

    public override Task<UploadReply> UploadUpdate(IAsyncStreamReader<UploadMessage> requestStream, ServerCallContext context) =>
        Guard(async () =>
        {
            string client = await Auth(context).ConfigureAwait(false);
            if (!await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false) || requestStream.Current.KindCase != UploadMessage.KindOneofCase.Header)
                throw new FlRejectedException(StatusCode.InvalidArgument, "an upload starts with its header");
            var header = requestStream.Current.Header;
            var state = await server.BeginUploadAsync(client, header).ConfigureAwait(false);
            while (state.Status == UploadStatus.Incomplete && await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
            {
                var m = requestStream.Current;
                if (m.KindCase != UploadMessage.KindOneofCase.Chunk) throw new FlRejectedException(StatusCode.InvalidArgument, "only chunks may follow the header");
                state = await server.AppendChunkAsync(client, header.UploadId, m.Chunk.Offset, m.Chunk.Data.Memory).ConfigureAwait(false);
                // a chunk past what the server holds was not taken: answer now with where the client must resume
                if (state.Status == UploadStatus.Incomplete && state.BytesReceived < m.Chunk.Offset) break;
            }
            if (state.Status == UploadStatus.Accepted) await server.TickAsync().ConfigureAwait(false);
            return state;
        });

    public override Task<QueryUploadReply> QueryUpload(QueryUploadRequest request, ServerCallContext context) =>
        Guard(async () => await server.QueryUploadAsync(await Auth(context).ConfigureAwait(false), request.UploadId).ConfigureAwait(false));

    public override Task<Ack> ReportEval(EvalReport request, ServerCallContext context) =>
        Guard(async () =>
        {
            await server.ReportEvalAsync(await Auth(context).ConfigureAwait(false), request).ConfigureAwait(false);
            return new Ack { Ok = true };
        });

    public override Task<HeartbeatReply> Heartbeat(HeartbeatRequest request, ServerCallContext context) =>
        Guard(async () => await server.HeartbeatAsync(await Auth(context).ConfigureAwait(false)).ConfigureAwait(false));

    public override Task<Ack> SendSecAgg(SecAggMessage request, ServerCallContext context) =>
        Guard(async () =>
        {
            await server.SendSecAggAsync(await Auth(context).ConfigureAwait(false), request).ConfigureAwait(false);
            return new Ack { Ok = true };
        });

    public override Task<FetchSecAggReply> FetchSecAgg(FetchSecAggRequest request, ServerCallContext context) =>
        Guard(async () => await server.FetchSecAggAsync(await Auth(context).ConfigureAwait(false), request).ConfigureAwait(false));

    private Task<string> Auth(ServerCallContext context) =>
        server.AuthenticateAsync(context.RequestHeaders.GetValue(FlServer.ClientIdHeader), context.RequestHeaders.GetValue(FlServer.CredentialHeader));

    private async Task<T> Guard<T>(Func<Task<T>> body)
    {
        try { return await body().ConfigureAwait(false); }
        catch (FlRejectedException e) { throw new RpcException(new Status(e.Status, e.Message)); }
        catch (RpcException) { throw; }
        catch (OperationCanceledException) { throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled")); }
        catch (IOException e) { throw new RpcException(new Status(StatusCode.Unavailable, "connection lost: " + e.Message)); }
        catch (Exception e)
        {
            onError?.Invoke(e);
            throw new RpcException(new Status(StatusCode.Internal, "internal server error: " + e.GetType().Name));
        }
    }

    private Task Guard(Func<Task<int>> body) => Guard<int>(body);
}
