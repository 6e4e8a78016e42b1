using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Protocol;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Storage;
using Grpc.Core;
using Grpc.Net.Client;

namespace EdgeTune.Tests.Federated.Server;

/// <summary>
/// Three silo processes (EdgeTune.FlSilo, a loopback Orleans cluster) form one federated server; 300 load clients speak
/// the real protocol to all three; the silo running the coordinator grain is killed mid-round. The coordinator
/// reactivates on another silo from the shared state, clients retry against the other silos, the rounds close, and each
/// new global equals the example-weighted FedAvg of the acknowledged updates, recomputed here from what the clients sent.
/// Two clusterings: development clustering on loopback with a shared SQLite state folder (the primary silo must live, so
/// the coordinator runs on another), and PostgreSQL membership and state (<c>EDGETUNE_TEST_POSTGRES</c>; each silo has
/// its own local folder, and the killed silo is the first one started, which also runs the coordinator).
/// </summary>
[Collection(nameof(ClusterProcesses))]
public sealed class FlMultiSiloTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const string Token = "multi-silo-token";
    private const ulong Seed = 7;
    private const double Scale = 1e-2;
    private const int Clients = 300, Rounds = 2, Tensors = 2, Rows = 4, Cols = 16;
    private readonly string _state = Path.Combine(Path.GetTempPath(), "edgetune-flsilos-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly List<Silo> _silos = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew(); // the silos' lines are stamped with it (a failure's timeline)

    private sealed class Silo(Process process)
    {
        public Process Process { get; } = process;
        public TaskCompletionSource<Uri> Url { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Coordinator { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public List<string> Lines { get; } = [];
    }

    private readonly string _task = TestPostgres.UniqueName("silos");

    public void Dispose()
    {
        foreach (var s in _silos)
            try { if (!s.Process.HasExited) s.Process.Kill(entireProcessTree: true); s.Process.Dispose(); } catch (InvalidOperationException) { }
        try { Directory.Delete(_state, recursive: true); } catch (IOException) { }
        TestPostgres.DropTask(_task);
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <param name="cluster">"--primary-port", port or "--cluster", connection string.</param>
    private Silo Start(int siloPort, string state, (string, object) cluster)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardInput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "EdgeTune.FlSilo.dll"));
        foreach (var (k, v) in new (string, object)[]
        {
            ("--state", state), ("--token", Token), ("--silo-port", siloPort), cluster, ("--task", _task), ("--min-clients", Clients),
            ("--quorum", Clients), ("--rounds", Rounds), ("--liveness", 30), ("--tensors", Tensors), ("--rows", Rows), ("--cols", Cols),
        })
        {
            psi.ArgumentList.Add(k);
            psi.ArgumentList.Add(Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture)!);
        }
        var silo = new Silo(Process.Start(psi)!);
        _silos.Add(silo);
        silo.Process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) { silo.Url.TrySetException(new InvalidOperationException("silo process ended: " + string.Join(" | ", silo.Lines))); return; }
            lock (silo.Lines) silo.Lines.Add($"[{_clock.Elapsed.TotalSeconds:F1} s] {line}");
            if (line.StartsWith("URL ", StringComparison.Ordinal)) silo.Url.TrySetResult(new Uri(line[4..]));
            if (line == "COORDINATOR") silo.Coordinator.TrySetResult();
        };
        silo.Process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) lock (silo.Lines) silo.Lines.Add($"stderr: [{_clock.Elapsed.TotalSeconds:F1} s] {line}"); };
        silo.Process.BeginOutputReadLine();
        silo.Process.BeginErrorReadLine();
        return silo;
    }

    [Fact]
    public async Task ThreeSilosLoseNothingWhenTheCoordinatorsSiloIsKilledMidRound()
    {
        int[] siloPorts = [FreePort(), FreePort(), FreePort()];
        var primary = Start(siloPorts[0], _state, ("--primary-port", siloPorts[0]));
        await primary.Url.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var others = new[] { Start(siloPorts[1], _state, ("--primary-port", siloPorts[0])), Start(siloPorts[2], _state, ("--primary-port", siloPorts[0])) };
        foreach (var s in others) await s.Url.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // the primary silo holds the development cluster's membership and must live: the coordinator runs on silo 1
        await RunKillingAsync([primary, .. others], victim: 1, () => new FlStateStore(_state));
    }

    [SkippableFact]
    public async Task ThreeSilosOnPostgresLoseNothingWhenTheFirstSiloIsKilledMidRound()
    {
        string cs = TestPostgres.Require();
        var silos = Enumerable.Range(0, 3).Select(i => Start(FreePort(), Path.Combine(_state, "silo" + i), ("--cluster", cs))).ToList();
        foreach (var s in silos) await s.Url.Task.WaitAsync(TimeSpan.FromSeconds(60));
        // no primary: the first silo started, which also runs the coordinator, is the one killed
        await RunKillingAsync(silos, victim: 0, () => new PgStateStore(cs, _task, Path.Combine(_state, "check")));
    }

    /// <summary>The run, with the silos' last lines in the failure message.</summary>
    private async Task RunKillingAsync(IReadOnlyList<Silo> silos, int victim, Func<IFlStateStore> openState)
    {
        try
        {
            await RunKillingCoreAsync(silos, victim, openState);
            foreach (var (s, i) in silos.Select((s, i) => (s, i))) // the timeline of a passing run (recovery time after the kill)
                lock (s.Lines) output.WriteLine($"silo {i}: " + string.Join("\n    ", s.Lines));
        }
        catch (Exception e)
        {
            var logs = silos.Select((s, i) =>
            {
                lock (s.Lines)
                    return $"silo {i} (exited: {s.Process.HasExited}): " + string.Join(" | ", s.Lines.Where(l => !l.StartsWith("stderr:", StringComparison.Ordinal)).TakeLast(6))
                        + " || first stderr: " + string.Join(" | ", s.Lines.Where(l => l.StartsWith("stderr:", StringComparison.Ordinal)).Take(8));
            });
            throw new Xunit.Sdk.XunitException(e.GetType().Name + ": " + e.Message + "\n" + string.Join("\n", logs));
        }
    }

    /// <summary>Starts the coordinator on silo <paramref name="victim"/>, runs the clients, kills that silo once a third of
    /// round 1 is acknowledged, stops the others at the end and checks the stored rounds against what the clients sent.</summary>
    private async Task RunKillingCoreAsync(IReadOnlyList<Silo> silos, int victim, Func<IFlStateStore> openState)
    {
        var urls = new List<Uri>();
        foreach (var s in silos) urls.Add(await s.Url.Task);
        var survivors = silos.Where((_, i) => i != victim).ToArray();

        // the first call reaches the victim, so the coordinator grain starts there (local placement)
        using (var channel = GrpcChannel.ForAddress(urls[victim]))
        {
            var rpc = new FederatedLearning.FederatedLearningClient(channel);
            var e = await Assert.ThrowsAsync<RpcException>(() => rpc.HeartbeatAsync(new HeartbeatRequest(),
                new Metadata { { FlServer.ClientIdHeader, "nobody" }, { FlServer.CredentialHeader, "nothing" } }).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        }
        await silos[victim].Coordinator.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await using var load = new FlLoadClient(new FlLoadOptions
        {
            Servers = urls, Token = Token, Clients = Clients, Seed = Seed, UpdateScale = Scale, RetryFor = TimeSpan.FromMinutes(3), MaxConcurrentUploads = 32,
        });
        var run = load.RunAsync();
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (load.AcknowledgedCount < Clients / 3 && !run.IsCompleted && DateTime.UtcNow < until) await Task.Delay(20);
        int ackedBeforeKill = load.AcknowledgedCount;
        Assert.InRange(ackedBeforeKill, Clients / 3, Clients - 1); // mid-round 1
        silos[victim].Process.Kill(entireProcessTree: true);
        lock (silos[victim].Lines) silos[victim].Lines.Add($"[{_clock.Elapsed.TotalSeconds:F1} s] KILLED with {ackedBeforeKill} acknowledged");

        FlLoadReport report;
        try { report = await run.WaitAsync(TimeSpan.FromMinutes(5)); }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the run did not finish; {load.AcknowledgedCount} acknowledged; where the others stand: {load.DescribeUnfinished()}");
        }
        // the coordinator moved to a surviving silo
        await Task.WhenAny(survivors.Select(s => s.Coordinator.Task)).WaitAsync(TimeSpan.FromSeconds(5));
        foreach (var s in survivors)
        {
            Assert.False(s.Process.HasExited, "a surviving silo stopped (voted dead by its peers?)"); // its lines say why
            await s.Process.StandardInput.WriteLineAsync("stop");
            s.Process.StandardInput.Close();
        }
        foreach (var s in survivors.Reverse()) Assert.True(s.Process.WaitForExit(60_000), "a silo did not stop");

        Assert.Empty(report.Rejections);
        Assert.Equal(Clients * Rounds, report.Acknowledged.Count);
        using var store = openState();
        var closed = store.Rounds().Where(r => !r.Open).ToList();
        Assert.Equal(Rounds, closed.Count);
        int length = Tensors * Rows * Cols;
        foreach (var round in closed)
        {
            var acked = report.Acknowledged.Where(a => a.Round == round.Round).ToList();
            var stored = store.UpdateIds(round.Round);
            Assert.Equal(acked.Select(a => a.UploadId).Order(), stored.Order()); // every acknowledged update stored once, nothing else
            int aggregated = System.Text.Json.JsonDocument.Parse(round.MetricsJson!).RootElement.GetProperty("Accepted").GetInt32();
            Assert.Equal(acked.Count, aggregated); // counted once each
            // the new global: the previous one plus the example-weighted mean of the deltas the clients sent (in double)
            var before = Floats(store.GetGlobal(round.GlobalVersion)!);
            var after = Floats(store.GetGlobal(round.ResultVersion!.Value)!);
            var sum = new double[length];
            double weight = 0;
            foreach (var a in acked)
            {
                var d = FlLoadClient.Delta(Seed, a.ClientIndex, a.Round, length, Scale);
                for (int i = 0; i < length; i++) sum[i] += a.NumExamples * (double)d[i];
                weight += a.NumExamples;
            }
            for (int i = 0; i < length; i++)
            {
                double expected = before[i] + sum[i] / weight;
                Assert.True(Math.Abs(after[i] - expected) <= 1e-6 * Math.Max(Math.Abs(expected), 1e-3),
                    $"round {round.Round}, value {i}: {after[i]} vs FedAvg {expected}");
            }
        }
    }

    private static float[] Floats(byte[] b) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b).ToArray();
}

/// <summary>Tests that start several silo processes and hundreds of clients run alone: their failure detection works on
/// 1-2 s probe timeouts, and in a full parallel run on 2 cores both multi-silo tests failed (a survivor silo exited, a
/// run did not finish in 5 minutes) where each passes on its own.</summary>
[CollectionDefinition(nameof(ClusterProcesses), DisableParallelization = true)]
public sealed class ClusterProcesses;
