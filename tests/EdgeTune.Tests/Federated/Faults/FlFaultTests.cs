using EdgeTune.Federated.Client;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Server.Internal;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace EdgeTune.Tests.Federated.Faults;

/// <summary>Loopback fault injection: dropped uploads, a killed server, hostile clients.</summary>
public class FlFaultTests
{
    private static byte[] Payload(long n, float value) => EdgeTune.Federated.UpdateCompression.UpdateCodec.EncodeFloat32(Enumerable.Repeat(value, (int)n).ToArray());

    [Fact]
    public async Task UploadDroppedMidwayResumesAndCountsOnce()
    {
        var layout = FlTestServer.Layout(40, 50); // 4000 floats = 16000 bytes, in 1000-byte chunks
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 1));
        using var a = s.Client(new ConstantTrainer(1f), chunkBytes: 1000);
        await a.EnrolAsync();
        var task = await a.GetTaskAsync();
        var payload = Payload(layout.TotalLength, 1f);
        var header = FlClient.Header(task.Round, task.GlobalVersion, payload, 10);

        var partial = await a.UploadPayloadAsync(header, payload, stopAfterBytes: 7000);
        Assert.Equal(UploadStatus.Incomplete, partial.Status);
        Assert.InRange(partial.BytesReceived, 1, 7000);
        Assert.Equal(0, s.Server.AcceptedCount(task.Round));

        var done = await a.UploadPayloadAsync(header, payload); // resumes from what the server holds
        Assert.Equal(UploadStatus.Accepted, done.Status);
        var again = await a.UploadPayloadAsync(header, payload); // a retry of a finished upload is a no-op
        Assert.Equal(UploadStatus.Accepted, again.Status);
        Assert.Equal(1, s.Server.AcceptedCount(task.Round));
        var stored = Assert.Single(s.Server.AcceptedUpdates(task.Round));
        Assert.Equal(payload, stored.Payload);
    }

    [Fact]
    public async Task ServerKilledMidRoundRestartsKeepingAcceptedUpdatesWithoutDoubleCounting()
    {
        var layout = FlTestServer.Layout(20, 30);
        await using var s = await FlTestServer.StartAsync(layout);
        using var a = s.Client(new ConstantTrainer(1f), chunkBytes: 1000);
        using var b = s.Client(new ConstantTrainer(3f), chunkBytes: 1000);
        await a.EnrolAsync();
        await b.EnrolAsync();
        var ta = await a.GetTaskAsync();
        var tb = await b.GetTaskAsync();
        var pa = Payload(layout.TotalLength, 1f);
        var ha = FlClient.Header(ta.Round, ta.GlobalVersion, pa, 10);
        Assert.Equal(UploadStatus.Accepted, (await a.UploadPayloadAsync(ha, pa)).Status);
        var pb = Payload(layout.TotalLength, 3f);
        var hb = FlClient.Header(tb.Round, tb.GlobalVersion, pb, 10);
        Assert.Equal(UploadStatus.Incomplete, (await b.UploadPayloadAsync(hb, pb, stopAfterBytes: 2000)).Status);

        await s.RestartAsync(); // killed mid-round: A accepted, B half-way

        Assert.Equal(0, s.Server.GlobalVersion);
        Assert.Equal(1, s.Server.AcceptedCount(1));
        Assert.Equal(UploadStatus.Accepted, (await a.UploadPayloadAsync(ha, pa)).Status); // A's retry: still counted once
        Assert.Equal(1, s.Server.AcceptedCount(1));
        Assert.Equal(UploadStatus.Accepted, (await b.UploadPayloadAsync(hb, pb)).Status); // B resumes its upload
        await EdgeTune.Tests.Federated.Server.FlServerTests.WaitFor(() => s.Server.GlobalVersion == 1);
        Assert.All(s.Server.Global, v => Assert.Equal(2f, v)); // mean(1, 3), each once
        var round = Assert.Single(s.Server.Results());
        Assert.Equal(2, round.Accepted);
    }

    [Fact]
    public async Task HostileUpdatesAreRejectedWithReasonsAndTheServerKeepsServing()
    {
        var layout = FlTestServer.Layout(4, 5);
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 4) with { MaxUpdateNorm = 100 });
        var clients = Enumerable.Range(0, 5).Select(_ => s.Client(new ConstantTrainer(1f))).ToList();
        try
        {
            var tasks = new List<TaskReply>();
            foreach (var c in clients) await c.EnrolAsync();
            foreach (var c in clients) tasks.Add(await c.GetTaskAsync());
            int n = (int)layout.TotalLength;
            var nan = Enumerable.Repeat(0.1f, n).ToArray();
            nan[7] = float.NaN;
            var r0 = await Upload(clients[0], tasks[0], EdgeTune.Federated.UpdateCompression.UpdateCodec.EncodeFloat32(nan));
            Assert.Equal(UploadStatus.Rejected, r0.Status);
            Assert.Contains("non-finite", r0.Reason);

            var r1 = await Upload(clients[1], tasks[1], Payload(n - 3, 0.1f)); // wrong shape
            Assert.Equal(UploadStatus.Rejected, r1.Status);
            Assert.Contains("expected", r1.Reason);

            var big = new byte[s.Server.MaxUpdateBytes + 1]; // oversized
            var r2 = await Upload(clients[2], tasks[2], big);
            Assert.Equal(UploadStatus.Rejected, r2.Status);
            Assert.Contains("outside", r2.Reason);

            var r3 = await Upload(clients[3], tasks[3], Payload(n, 1000f)); // norm bound
            Assert.Equal(UploadStatus.Rejected, r3.Status);
            Assert.Contains("norm", r3.Reason);

            var stored = s.Server.Rejections(1);
            Assert.Equal(4, stored.Count);
            Assert.All(stored, r => Assert.False(string.IsNullOrEmpty(r.Reason)));

            // the server still serves a well-behaved client
            var ok = await Upload(clients[0], tasks[0], Payload(n, 0.1f));
            Assert.Equal(UploadStatus.Accepted, ok.Status);
            var hb = await clients[4].HeartbeatAsync();
            Assert.Equal(1, hb.CurrentRound);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    private static Task<UploadReply> Upload(FlClient c, TaskReply t, byte[] payload) =>
        c.UploadPayloadAsync(FlClient.Header(t.Round, t.GlobalVersion, payload, 10), payload);

    [Fact]
    public async Task CallsWithoutValidCredentialsAreUnauthenticated()
    {
        await using var s = await FlTestServer.StartAsync(FlTestServer.Layout());
        using var channel = GrpcChannel.ForAddress(s.Url);
        var raw = new FederatedLearning.FederatedLearningClient(channel);
        var e1 = await Assert.ThrowsAsync<RpcException>(() => raw.GetTaskAsync(new GetTaskRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e1.StatusCode);
        var e2 = await Assert.ThrowsAsync<RpcException>(() => raw.EnrolAsync(new EnrolRequest { Token = "wrong" }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e2.StatusCode);
        var enrolled = await raw.EnrolAsync(new EnrolRequest { Token = FlTestServer.Token });
        var forged = new Metadata { { FlServer.ClientIdHeader, enrolled.ClientId }, { FlServer.CredentialHeader, enrolled.Credential + "x" } };
        var e3 = await Assert.ThrowsAsync<RpcException>(() => raw.GetTaskAsync(new GetTaskRequest(), forged).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, e3.StatusCode);
        var e4 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = raw.DownloadGlobal(new DownloadRequest(), forged);
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.Unauthenticated, e4.StatusCode);
        // an upload stream that starts with a chunk instead of a header is refused, and the server goes on
        var good = new Metadata { { FlServer.ClientIdHeader, enrolled.ClientId }, { FlServer.CredentialHeader, enrolled.Credential } };
        var e5 = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = raw.UploadUpdate(good);
            await call.RequestStream.WriteAsync(new UploadMessage { Chunk = new DataChunk { Data = ByteString.CopyFrom(new byte[10]) } });
            await call.RequestStream.CompleteAsync();
            await call.ResponseAsync;
        });
        Assert.Equal(StatusCode.InvalidArgument, e5.StatusCode);
        var task = await raw.GetTaskAsync(new GetTaskRequest(), good);
        Assert.Equal(TaskKind.Wait, task.Kind); // only one of two clients enrolled
    }

    [Fact]
    public async Task LateUpdateIsRejectedAsLate()
    {
        var layout = FlTestServer.Layout();
        await using var s = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: 1, rounds: 2));
        using var a = s.Client(new ConstantTrainer(1f));
        await a.EnrolAsync();
        var t = await a.GetTaskAsync();
        var p = Payload(layout.TotalLength, 1f);
        Assert.Equal(UploadStatus.Accepted, (await a.UploadPayloadAsync(FlClient.Header(t.Round, t.GlobalVersion, p, 1), p)).Status);
        await EdgeTune.Tests.Federated.Server.FlServerTests.WaitFor(() => s.Server.GlobalVersion == 1);
        var late = await a.UploadPayloadAsync(FlClient.Header(t.Round, t.GlobalVersion, p, 1), p);
        Assert.Equal(UploadStatus.Rejected, late.Status);
        Assert.Contains("late", late.Reason);
    }
}
