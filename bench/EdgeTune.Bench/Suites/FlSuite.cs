using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Cluster;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Storage;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Federated server under load: N virtual clients (<see cref="FlLoadClient"/>: the real gRPC protocol over loopback,
/// random updates of the real size instead of training), 30% of them dropping out of each round (half before
/// training, half mid-upload; they come back later and resume), several FedAvg rounds of a synthetic LoRA-sized update
/// (rank-8 q/v adapters of a 576-wide, 30-layer model: 552,960 floats, 2.2 MB as f32). The server runs in a child
/// process (same executable) so its peak RSS and managed heap are its own; it keeps serving until the clients are all
/// done (a client that dropped out of the last round still hears "done"). Round time is the protocol's: uploads,
/// validation, SQLite commits, aggregation, and the straggler wait (liveness timeout 2 s) when dropouts hold a round open.
/// Afterwards the suite reads the server's state and checks every round against FedAvg recomputed from what the
/// clients say was acknowledged: <c>lost</c> (acknowledged, not aggregated), <c>double_counted</c> (aggregated more
/// than once) and the largest relative error of the new global.
/// </summary>
public sealed class FlSuite : IBenchSuite
{
    private const string ChildVariable = "EDGETUNE_BENCH_FL_SERVER";
    private const string Token = "bench-token";
    private const int DefaultClients = 100;
    private const double Dropout = 0.3;
    private const ulong Seed = 1;
    private const double UpdateScale = 1e-3;
    private static readonly TimeSpan Liveness = TimeSpan.FromSeconds(2);

    public string Name => "fl";
    public string Description => "federated server: N loopback gRPC load clients (--clients N, default 100), 30% dropout, round time, server peak memory, lost/double-counted updates";

    /// <summary>Rank-8 LoRA on q_proj and v_proj of 30 layers of width 576 (SmolLM2-135M-like).</summary>
    private static UpdateLayout Layout()
    {
        var tensors = new List<(string, int[])>();
        for (int l = 0; l < 30; l++)
            foreach (string p in new[] { "q_proj", "v_proj" })
            {
                tensors.Add(($"layers.{l}.{p}.lora_A.weight", [8, 576]));
                tensors.Add(($"layers.{l}.{p}.lora_B.weight", [576, 8]));
            }
        return new UpdateLayout(tensors);
    }

    public int Run(BenchOptions options)
    {
        int rounds = options.Quick ? 2 : 5;
        int clients = options.Clients ?? DefaultClients;
        if (Environment.GetEnvironmentVariable(ChildVariable) is { Length: > 0 } folder) return RunServer(folder, rounds, clients);
        var layout = Layout();
        Console.WriteLine($"fl suite: {clients} load clients over loopback gRPC, dropout {Dropout:P0}, {rounds} rounds of FedAvg, update {layout.TotalLength:N0} floats ({layout.TotalLength * 4 / 1e6:F1} MB f32), " +
            $"liveness timeout {Liveness.TotalSeconds} s; server in a child process; {Environment.ProcessorCount} processors (shared machine: wall-clock figures are noisy)");
        string state = Path.Combine(Path.GetTempPath(), "edgetune-bench-fl-" + Guid.NewGuid().ToString("N")[..8]);
        string exe = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase)) psi.ArgumentList.Add(typeof(FlSuite).Assembly.Location);
        psi.ArgumentList.Add("fl");
        if (options.Quick) psi.ArgumentList.Add("--quick");
        psi.ArgumentList.Add("--clients");
        psi.ArgumentList.Add(clients.ToString(CultureInfo.InvariantCulture));
        psi.Environment[ChildVariable] = state;
        using var child = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        try
        {
            // the child's lines are echoed as they come; its URL starts the clients, its last JSON line is kept
            var url = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            string? serverJson = null;
            var reader = new Thread(() =>
            {
                while (child.StandardOutput.ReadLine() is { } line)
                {
                    if (line.StartsWith("URL ", StringComparison.Ordinal)) url.TrySetResult(line[4..]);
                    else if (line.StartsWith('{')) serverJson = line;
                    else Console.WriteLine("  " + line);
                }
                url.TrySetException(new InvalidOperationException($"fl bench: the server process ended (exit code {(child.WaitForExit(5000) ? child.ExitCode : -1)})"));
            }) { IsBackground = true };
            reader.Start();

            FlLoadReport report;
            var load = new FlLoadClient(new FlLoadOptions
            {
                Servers = [new Uri(url.Task.GetAwaiter().GetResult())], Token = Token, Clients = clients, Dropout = Dropout,
                DropoutSilence = Liveness * 2, Seed = Seed, UpdateScale = UpdateScale, RetryFor = TimeSpan.FromMinutes(2),
            });
            try { report = load.RunAsync().GetAwaiter().GetResult(); }
            finally { load.DisposeAsync().AsTask().GetAwaiter().GetResult(); }

            child.StandardInput.WriteLine("stop"); // every client has heard "done": the server may go
            child.StandardInput.Close();
            reader.Join();
            child.WaitForExit();
            if (child.ExitCode != 0 || serverJson is null) throw new InvalidOperationException($"fl bench: the server process failed (exit code {child.ExitCode})");
            var server = JsonNode.Parse(serverJson)!.AsObject();
            var check = Check(state, layout, report);

            int accepted = report.Acknowledged.Count;
            var roundSeconds = server["rounds"]!.AsArray().Select(r => (double)r!["seconds"]!).ToList();
            double meanRound = roundSeconds.Average(), updatesPerSecond = accepted / roundSeconds.Sum();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"clients: {accepted} updates acknowledged, {report.Dropouts} dropouts, {report.Rejections.Count} rejections; total {report.Elapsed.TotalSeconds:F1} s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"server: mean round {meanRound:F2} s, {updatesPerSecond:F2} accepted updates/s, peak RSS {(double)server["peak_rss_mb"]!:F0} MB, peak managed heap {(double)server["peak_managed_mb"]!:F0} MB"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"check: lost {check.Lost}, double counted {check.DoubleCounted}, largest relative error of a new global vs FedAvg recomputed from the acknowledged updates {check.MaxRelativeError:E2}"));
            foreach (var r in report.Rejections.Take(5)) Console.WriteLine("  rejected: " + r);
            var root = new JsonObject
            {
                ["suite"] = "fl", ["clients"] = clients, ["silos"] = 1, ["dropout"] = Dropout, ["rounds"] = rounds, ["update_floats"] = layout.TotalLength,
                ["liveness_s"] = Liveness.TotalSeconds, ["accepted"] = accepted, ["dropouts"] = report.Dropouts, ["rejected"] = report.Rejections.Count,
                ["total_s"] = Json.Number(report.Elapsed.TotalSeconds, 2), ["mean_round_s"] = Json.Number(meanRound, 2),
                ["updates_per_s"] = Json.Number(updatesPerSecond, 2), ["peak_rss_mb"] = new JsonArray(Json.Number((double)server["peak_rss_mb"]!, 1)),
                ["peak_managed_mb"] = Json.Number((double)server["peak_managed_mb"]!, 1),
                ["lost"] = check.Lost, ["double_counted"] = check.DoubleCounted, ["fedavg_max_rel_err"] = check.MaxRelativeError,
                ["server_rounds"] = server["rounds"]!.DeepClone(),
            };
            Json.WriteLast(root);
            return check.Lost == 0 && check.DoubleCounted == 0 && check.MaxRelativeError <= 1e-6 ? 0 : 1;
        }
        finally
        {
            if (!child.HasExited) child.Kill();
            try { Directory.Delete(state, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Compares the server's stored rounds with the clients' acknowledgements: each acknowledged upload must be
    /// stored exactly once, each round must have aggregated exactly its stored updates, and each new global must equal the
    /// previous one plus the example-weighted mean of the acknowledged deltas (recomputed here from their seeds, in double).</summary>
    private static (int Lost, int DoubleCounted, double MaxRelativeError) Check(string folder, UpdateLayout layout, FlLoadReport report)
    {
        using var store = new FlStateStore(folder);
        int lost = 0, doubled = 0;
        double maxRel = 0;
        var ackedByRound = report.Acknowledged.GroupBy(a => a.Round).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var round in store.Rounds().Where(r => !r.Open))
        {
            var stored = store.UpdateIds(round.Round);
            var storedSet = stored.ToHashSet();
            var acked = ackedByRound.GetValueOrDefault(round.Round) ?? [];
            lost += acked.Count(a => !storedSet.Contains(a.UploadId));
            int aggregated = System.Text.Json.JsonDocument.Parse(round.MetricsJson!).RootElement.GetProperty("Accepted").GetInt32();
            doubled += Math.Max(0, aggregated - storedSet.Count) + (stored.Count - storedSet.Count);
            // the new global from the previous one and the acknowledged deltas
            var before = Floats(store.GetGlobal(round.GlobalVersion)!);
            var after = Floats(store.GetGlobal(round.ResultVersion!.Value)!);
            var sum = new double[layout.TotalLength];
            double weight = 0;
            foreach (var a in acked)
            {
                var d = FlLoadClient.Delta(Seed, a.ClientIndex, a.Round, checked((int)layout.TotalLength), UpdateScale);
                for (int i = 0; i < sum.Length; i++) sum[i] += a.NumExamples * (double)d[i];
                weight += a.NumExamples;
            }
            double num = 0, den = 0;
            for (int i = 0; i < sum.Length; i++)
            {
                double expected = (float)(before[i] + sum[i] / weight);
                num = Math.Max(num, Math.Abs(after[i] - expected));
                den = Math.Max(den, Math.Abs(expected));
            }
            maxRel = Math.Max(maxRel, num / den);
        }
        return (lost, doubled, maxRel);
    }

    private static float[] Floats(byte[] b) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b).ToArray();

    /// <summary>The child: serves the rounds, samples its own memory, prints its rounds, waits for the parent's "stop"
    /// (every client has finished), then prints one JSON line.</summary>
    private static int RunServer(string folder, int rounds, int clients)
    {
        var layout = Layout();
        long peakManaged = 0;
        using var sampler = new Timer(_ => { long m = GC.GetTotalMemory(false); if (m > Interlocked.Read(ref peakManaged)) Interlocked.Exchange(ref peakManaged, m); },
            null, 0, 20);
        var options = new FlServerOptions
        {
            StateFolder = folder, EnrolmentToken = Token, Rounds = rounds, MinClients = clients, MinQuorum = clients / 2,
            LivenessTimeout = Liveness, RoundDeadline = TimeSpan.FromMinutes(5), RateLimitPerSecond = 1000, MaxUpdateNorm = 1e3,
        };
        var rows = new JsonArray();
        var silo = new FlSiloOptions
        {
            Server = options, Layout = layout,
            ServerStarted = server => server.RoundCompleted += r =>
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {r.Round}: {r.Accepted}/{r.Selected} accepted, {r.Rejected} rejected, {r.Duration.TotalSeconds:F2} s ({r.ClosedBy}), server RSS {Environment.WorkingSet / 1e6:F0} MB"));
                lock (rows) rows.Add(new JsonObject { ["round"] = r.Round, ["accepted"] = r.Accepted, ["seconds"] = Json.Number(r.Duration.TotalSeconds, 2), ["closed_by"] = r.ClosedBy });
            },
        };
        // one Orleans silo, as `edgetune fl serve` runs it: the coordinator grain runs the rounds, aggregator grains fold the updates
        var host = FlServerHost.StartSiloAsync(silo).GetAwaiter().GetResult();
        Console.WriteLine("URL " + host.Url);
        host.Server.Completion.GetAwaiter().GetResult();
        Console.In.ReadLine(); // the parent's "stop", or the end of its input
        host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Json.WriteLast(new JsonObject
        {
            ["rounds"] = rows, ["peak_rss_mb"] = Json.Number(ProcessMemory.PeakRssBytes() / 1e6, 1), ["peak_managed_mb"] = Json.Number(peakManaged / 1e6, 1),
        });
        return 0;
    }
}
