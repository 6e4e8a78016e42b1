using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.SecureAggregation;
using EdgeTune.Federated.Server;
using Google.Protobuf;
using Grpc.Core;

namespace EdgeTune.Federated.Client;

/// <summary>The client's side of a secure-aggregation round (see the server's description of the stages).</summary>
public sealed partial class FlClient
{
    /// <summary>Poll period while waiting for the server to close a secure-aggregation stage.</summary>
    private static readonly TimeSpan SecAggPoll = TimeSpan.FromMilliseconds(50);

    /// <summary>Runs the four stages for a trained update. Returns (true, null) when the masked input was accepted and
    /// the unmask request answered; (false, null) when a simulated dropout left after masking; (false, reason) when the
    /// round failed or refused this client.</summary>
    private async Task<(bool Ok, string? Why)> SecureAggregateAsync(TaskReply task, UpdateLayout layout, LocalFitResult result, FlDropout drop, CancellationToken ct)
    {
        int round = task.Round;
        var delta = result.Delta;
        if (task.Privacy.MaxUpdateNorm > 0) ClipToNorm(delta, task.Privacy.MaxUpdateNorm); // the server cannot check a masked update's norm
        using var sa = new SecureAggregationClient(ClientId!, new SecAggOptions(Math.Max(2, task.SecureAggregation.Threshold), checked((int)layout.TotalLength + 1)));
        try
        {
            await SendSecAggAsync(round, SecAggStage.Advertise, sa.Advertise().ToBytes(), ct).ConfigureAwait(false);
            var roster = SecAggRoster.FromBytes(await AwaitStageAsync(round, SecAggStage.Advertise, ct).ConfigureAwait(false));
            await SendSecAggAsync(round, SecAggStage.ShareKeys, sa.ShareKeys(roster).ToBytes(), ct).ConfigureAwait(false);
            var shares = SecAggForwardedShares.FromBytes(await AwaitStageAsync(round, SecAggStage.ShareKeys, ct).ConfigureAwait(false));
            if (drop == FlDropout.BeforeMasking) return (false, null);
            var masked = sa.MaskInput(SecAggWeighting.Weighted(delta, Math.Max(1, result.NumExamples)), shares).ToBytes();
            var header = Header(round, task.GlobalVersion, masked, result.NumExamples, result.Metrics, FlServer.MaskedEncoding);
            var reply = await UploadPayloadAsync(header, masked, null, ct).ConfigureAwait(false);
            if (reply.Status != UploadStatus.Accepted) return (false, reply.Reason);
            if (drop == FlDropout.AfterMasking) return (false, null);
            var request = SecAggUnmaskRequest.FromBytes(await AwaitStageAsync(round, SecAggStage.MaskedInput, ct).ConfigureAwait(false));
            await SendSecAggAsync(round, SecAggStage.Unmask, sa.Unmask(request).ToBytes(), ct).ConfigureAwait(false);
            return (true, null);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.InvalidArgument or StatusCode.PermissionDenied or StatusCode.NotFound)
        {
            return (false, "secure aggregation: " + e.Status.Detail);
        }
        catch (Exception e) when (e is SecureAggregationException or FormatException)
        {
            return (false, e.Message);
        }
    }

    private Task<Ack> SendSecAggAsync(int round, SecAggStage stage, byte[] payload, CancellationToken ct) =>
        Retry(() => _rpc.SendSecAggAsync(new SecAggMessage { Round = round, Stage = (int)stage, To = FlServer.ServerRecipient, Payload = ByteString.CopyFrom(payload) },
            Auth(), cancellationToken: ct).ResponseAsync, ct);

    /// <summary>Polls until the server posts its answer to <paramref name="stage"/> (the server refuses the poll
    /// once the round has closed or failed, which ends the wait).</summary>
    private async Task<byte[]> AwaitStageAsync(int round, SecAggStage stage, CancellationToken ct)
    {
        while (true)
        {
            var reply = await Retry(() => _rpc.FetchSecAggAsync(new FetchSecAggRequest { Round = round, Stage = (int)stage }, Auth(), cancellationToken: ct).ResponseAsync, ct)
                .ConfigureAwait(false);
            foreach (var m in reply.Messages)
                if (m.From == FlServer.ServerRecipient) return m.Payload.ToByteArray();
            await Task.Delay(SecAggPoll, ct).ConfigureAwait(false);
        }
    }

    private static void ClipToNorm(float[] v, double maxNorm)
    {
        double sq = 0;
        foreach (float x in v) sq += (double)x * x;
        double norm = Math.Sqrt(sq);
        if (norm <= maxNorm) return;
        float s = (float)(maxNorm / norm);
        for (int i = 0; i < v.Length; i++) v[i] *= s;
    }
}
