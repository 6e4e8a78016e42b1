using Grpc.Core;

namespace EdgeTune.Federated.Server;

/// <summary>A client request the server refuses: the gRPC status to answer with and the reason (sent to the client).</summary>
public sealed class FlRejectedException(StatusCode status, string reason) : Exception(reason)
{
    public StatusCode Status { get; } = status;
}
