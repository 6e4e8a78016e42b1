using EdgeTune.Federated.Client;

namespace EdgeTune.Tests.Federated.Client;

/// <summary>The load client over loopback gRPC against a real server: dropouts with resumed uploads, and every
/// acknowledged update is aggregated exactly once into the example-weighted FedAvg recomputed from its seed.</summary>
public sealed class FlLoadClientTests
{
    [Fact]
    public async Task LoadClientsWithDropoutsAreEachCountedOnceInExactFedAvg()
    {
        const int clients = 12, rounds = 2;
        const ulong seed = 42;
        var layout = FlTestServer.Layout(16, 40); // 1,280 values
        int length = checked((int)layout.TotalLength);
        await using var server = await FlTestServer.StartAsync(layout, f => FlTestServer.Options(f, minClients: clients, rounds: rounds) with
        {
            MinQuorum = clients / 2, LivenessTimeout = TimeSpan.FromSeconds(3),
        });
        FlLoadReport report;
        await using (var load = new FlLoadClient(new FlLoadOptions
        {
            Servers = [server.Url], Token = FlTestServer.Token, Clients = clients, Dropout = 0.4, Seed = seed,
            DropoutSilence = TimeSpan.FromMilliseconds(300), MaxConcurrentUploads = 4, ChunkBytes = 1000, UpdateScale = 0.01,
        }))
            report = await load.RunAsync().WaitAsync(TimeSpan.FromMinutes(3));

        Assert.True(report.Dropouts > 0);
        Assert.All(report.Rejections, r => Assert.Contains("late:", r)); // only a round closing on quorum under a slow client refuses
        Assert.Equal(report.Acknowledged.Count, report.Acknowledged.Select(a => a.UploadId).Distinct().Count());
        var results = server.Server.Results();
        Assert.Equal(rounds, results.Count);
        var previous = new float[length];
        for (int r = 1; r <= rounds; r++)
        {
            var acked = report.Acknowledged.Where(a => a.Round == r).ToList();
            var stored = server.Server.AcceptedUpdates(r);
            Assert.Equal(acked.Select(a => a.UploadId).Order(), stored.Select(s => s.UploadId).Order()); // none lost, none extra
            Assert.Equal(acked.Count, results[r - 1].Accepted); // aggregated once each
            // the new global = the previous one + Σ nᵢ·δᵢ / Σ nᵢ, recomputed here from the clients' seeds
            var sum = new double[length];
            double weight = 0;
            foreach (var a in acked)
            {
                Assert.Equal(FlLoadClient.NumExamples(seed, a.ClientIndex), a.NumExamples);
                var d = FlLoadClient.Delta(seed, a.ClientIndex, r, length, 0.01);
                for (int i = 0; i < length; i++) sum[i] += a.NumExamples * (double)d[i];
                weight += a.NumExamples;
            }
            var global = FloatsOf(server.Server.GlobalBytes(r));
            for (int i = 0; i < length; i++)
            {
                double expected = previous[i] + sum[i] / weight;
                Assert.True(Math.Abs(global[i] - expected) <= 1e-6 * Math.Max(1e-3, Math.Abs(expected)), $"round {r} value {i}: {global[i]} vs {expected}");
            }
            previous = global;
        }
    }

    private static float[] FloatsOf(byte[] b) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b).ToArray();
}
