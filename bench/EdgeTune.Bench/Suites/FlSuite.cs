using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Storage;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Federated server under load: N virtual clients (<see cref="FlLoadClient"/>: the real gRPC protocol over loopback,
/// random updates of the real size instead of training), 30% of them dropping out of each round (half before
/// training, half mid-upload; they come back later and resume), several FedAvg rounds of a synthetic LoRA-sized update
/// (rank-8 q/v adapters of a 576-wide, 30-layer model: 552,960 floats, 2.2 MB as f32). The server is S silo processes
/// (EdgeTune.FlSilo: Orleans silos on loopback sharing one state folder; S = 1 is a lone silo as <c>fl serve</c> runs it),
/// each measured on its own (peak RSS from /proc, VmHWM); the clients spread over every silo's endpoint. With
/// <c>--kill-silo</c> (S ≥ 2) the silo running the coordinator grain is killed once a quarter of the clients have an
/// update acknowledged: the coordinator reactivates on another silo and the clients move over. Round time is the
/// protocol's: uploads, validation, SQLite commits, aggregation, and the straggler wait (liveness timeout 2 s) when
/// dropouts hold a round open. Afterwards the suite reads the server's state and checks every round against FedAvg
/// recomputed from what the clients say was acknowledged: <c>lost</c> (acknowledged, not aggregated),
/// <c>double_counted</c> (aggregated more than once) and the largest relative error of the new global. With
/// <c>--cluster "&lt;Npgsql connection string&gt;"</c> the silos form the cluster as <c>fl serve --cluster</c> does: membership
/// and state in PostgreSQL (a fresh task, dropped afterwards), no primary silo, each silo with its own local folder; the
/// first silo started runs the coordinator and is the one killed.
/// </summary>
public sealed class FlSuite : IBenchSuite
{
    private const string Token = "bench-token";
    private const int DefaultClients = 100;
    private const double Dropout = 0.3;
    private const ulong Seed = 1;
    private const double UpdateScale = 1e-3;
    private static readonly TimeSpan Liveness = TimeSpan.FromSeconds(2);
    // rank-8 LoRA on q_proj and v_proj of 30 layers of width 576 (SmolLM2-135M-like): 120 tensors of 8×576 and 576×8
    private const int Tensors = 120, Rank = 8, Width = 576;
    private const int UpdateFloats = Tensors * Rank * Width;

    public string Name => "fl";
    public string Description => "federated server: N loopback gRPC load clients (--clients N, default 100) on S silo processes (--silos S, default 1; --kill-silo kills the coordinator's), 30% dropout, round time, peak memory per silo, lost/double-counted updates";

    private sealed class SiloProcess(Process process)
    {
        public Process Process { get; } = process;
        public int Pid { get; } = process.Id; // read by the memory sampler, which may outlive the Process object
        public TaskCompletionSource<string> Url { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Coordinator { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<string> Exit { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously); // its last line: peak RSS, GC figures
        public long PeakRss; // VmHWM sampled from /proc while the process lives
        public long CpuTicks; // user + system time (clock ticks) sampled from /proc while the process lives
        public bool Killed;
    }

    public int Run(BenchOptions options)
    {
        int rounds = options.Quick ? 2 : 5;
        int clients = options.Clients ?? DefaultClients;
        int silos = options.Silos ?? 1;
        bool kill = options.KillSilo;
        string? cluster = options.Cluster;
        string task = "bench" + Guid.NewGuid().ToString("N")[..10];
        if (kill && silos < 2) { Console.Error.WriteLine("fl bench: --kill-silo needs --silos 2 or more (someone must take over)"); return 2; }
        Console.WriteLine($"fl suite: {clients} load clients over loopback gRPC on {silos} silo process(es){(kill ? ", the coordinator's silo killed mid-round" : "")}, dropout {Dropout:P0}, {rounds} rounds of FedAvg, " +
            $"update {UpdateFloats:N0} floats ({UpdateFloats * 4 / 1e6:F1} MB f32), liveness timeout {Liveness.TotalSeconds} s; {Environment.ProcessorCount} processors (shared machine: wall-clock figures are noisy)" +
            (cluster is null ? "; SQLite state shared by the silos" : "; membership and state in PostgreSQL"));
        string loadBefore = LoadAverage();
        string state = Path.Combine(Path.GetTempPath(), "edgetune-bench-fl-" + Guid.NewGuid().ToString("N")[..8]);
        var procs = new List<SiloProcess>();
        var roundRows = new List<JsonObject>();
        using var sampler = new Timer(_ =>
        {
            foreach (var p in procs.ToArray())
            {
                if (p.Killed) continue;
                if (ReadHwm(p.Pid) is long hwm && hwm > Interlocked.Read(ref p.PeakRss)) Interlocked.Exchange(ref p.PeakRss, hwm);
                if (ReadCpuTicks(p.Pid) is long ticks && ticks > Interlocked.Read(ref p.CpuTicks)) Interlocked.Exchange(ref p.CpuTicks, ticks);
            }
        }, null, 0, 100);
        try
        {
            int[] siloPorts = Enumerable.Range(0, silos).Select(_ => FreePort()).ToArray();
            for (int i = 0; i < silos; i++)
            {
                var p = cluster is null ? StartSilo(state, siloPorts[i], ("--primary-port", silos > 1 ? siloPorts[0] : null), task, clients, rounds, roundRows)
                    : StartSilo(Path.Combine(state, "silo" + i), siloPorts[i], ("--cluster", cluster), task, clients, rounds, roundRows);
                lock (procs) procs.Add(p);
                if (i == 0) p.Url.Task.Wait(TimeSpan.FromSeconds(120)); // the primary (or the first member) first
            }
            var urls = procs.Select(p => new Uri(p.Url.Task.WaitAsync(TimeSpan.FromSeconds(120)).GetAwaiter().GetResult())).ToList();
            // loopback clustering: not on the primary, which holds the cluster's membership; PostgreSQL: any silo may die
            int victim = silos > 1 && cluster is null ? 1 : 0;
            if (silos > 1) PlaceCoordinator(urls[victim], procs[victim]);

            FlLoadReport report;
            var load = new FlLoadClient(new FlLoadOptions
            {
                Servers = urls, Token = Token, Clients = clients, Dropout = Dropout,
                DropoutSilence = Liveness * 2, Seed = Seed, UpdateScale = UpdateScale, RetryFor = TimeSpan.FromMinutes(3),
            });
            try
            {
                var run = load.RunAsync();
                if (kill)
                {
                    while (load.AcknowledgedCount < clients / 4 && !run.IsCompleted) Thread.Sleep(10);
                    procs[victim].Killed = true;
                    procs[victim].Process.Kill(entireProcessTree: true);
                    Console.WriteLine($"  killed silo {victim} (the coordinator's) after {load.AcknowledgedCount} acknowledged updates");
                }
                report = run.GetAwaiter().GetResult();
            }
            finally { load.DisposeAsync().AsTask().GetAwaiter().GetResult(); }

            foreach (var p in procs.Where(p => !p.Killed))
            {
                p.Process.StandardInput.WriteLine("stop"); // every client has heard "done": the silos may go
                p.Process.StandardInput.Close();
            }
            foreach (var p in procs.Where(p => !p.Killed))
                if (!p.Process.WaitForExit(120_000) || p.Process.ExitCode != 0) throw new InvalidOperationException($"fl bench: a silo process failed or hung");
            var check = Check(() => cluster is null ? new FlStateStore(state) : new PgStateStore(cluster, task, Path.Combine(state, "check")), report);
            foreach (var (p, i) in procs.Select((p, i) => (p, i)).Where(x => !x.p.Killed))
                if (p.Exit.Task.Wait(TimeSpan.FromSeconds(5))) Console.WriteLine($"  silo {i} at exit: {p.Exit.Task.Result}");

            int accepted = report.Acknowledged.Count;
            List<double> roundSeconds;
            lock (roundRows) roundSeconds = roundRows.GroupBy(r => (int)r["round"]!).Select(g => (double)g.Last()["seconds"]!).ToList();
            double meanRound = roundSeconds.Count > 0 ? roundSeconds.Average() : double.NaN, updatesPerSecond = accepted / roundSeconds.Sum();
            var peaks = procs.Select(p => Interlocked.Read(ref p.PeakRss) / 1e6).ToList();
            var cpu = procs.Select(p => Interlocked.Read(ref p.CpuTicks) / (double)ClockTicksPerSecond).ToList();
            double clientCpu = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
            string loadAfter = LoadAverage();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"clients: {accepted} updates acknowledged, {report.Dropouts} dropouts, {report.Rejections.Count} rejections; total {report.Elapsed.TotalSeconds:F1} s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"server: mean round {meanRound:F2} s, {updatesPerSecond:F2} accepted updates/s, peak RSS per silo {string.Join(", ", peaks.Select(p => p.ToString("F0", CultureInfo.InvariantCulture)))} MB"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cpu: {string.Join(", ", cpu.Select(c => c.ToString("F1", CultureInfo.InvariantCulture)))} s per silo ({cpu.Sum() * 1000 / Math.Max(1, accepted):F0} ms per accepted update), {clientCpu:F1} s in this process (the load clients); load average {loadBefore} before, {loadAfter} after"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"check: lost {check.Lost}, double counted {check.DoubleCounted}, largest relative error of a new global vs FedAvg recomputed from the acknowledged updates {check.MaxRelativeError:E2}"));
            foreach (var r in report.Rejections.Take(5)) Console.WriteLine("  rejected: " + r);
            var root = new JsonObject
            {
                ["suite"] = "fl", ["clients"] = clients, ["silos"] = silos, ["killed_silo"] = kill, ["state"] = cluster is null ? "sqlite" : "postgresql", ["dropout"] = Dropout, ["rounds"] = rounds, ["update_floats"] = UpdateFloats,
                ["liveness_s"] = Liveness.TotalSeconds, ["accepted"] = accepted, ["dropouts"] = report.Dropouts, ["rejected"] = report.Rejections.Count,
                ["total_s"] = Json.Number(report.Elapsed.TotalSeconds, 2), ["mean_round_s"] = Json.Number(meanRound, 2),
                ["updates_per_s"] = Json.Number(updatesPerSecond, 2), ["peak_rss_mb"] = new JsonArray(peaks.Select(p => (JsonNode?)Json.Number(p, 1)).ToArray()),
                ["cpu_s"] = new JsonArray(cpu.Select(c => (JsonNode?)Json.Number(c, 1)).ToArray()), ["client_cpu_s"] = Json.Number(clientCpu, 1),
                ["load_avg"] = new JsonArray(loadBefore, loadAfter),
                ["lost"] = check.Lost, ["double_counted"] = check.DoubleCounted, ["fedavg_max_rel_err"] = check.MaxRelativeError,
            };
            Json.WriteLast(root);
            return check.Lost == 0 && check.DoubleCounted == 0 && check.MaxRelativeError <= 1e-6 ? 0 : 1;
        }
        finally
        {
            foreach (var p in procs)
            {
                if (!p.Process.HasExited) p.Process.Kill(entireProcessTree: true);
                p.Process.Dispose();
            }
            try { Directory.Delete(state, recursive: true); } catch (IOException) { }
            if (cluster is not null) DropTask(cluster, task);
        }
    }

    /// <summary>Removes what the run left in PostgreSQL: the task's schema and its cluster's membership rows.</summary>
    private static void DropTask(string connectionString, string task)
    {
        try { EdgeTune.Federated.Cluster.PgClustering.DeleteTask(connectionString, task); }
        catch (Exception e) when (e is Npgsql.NpgsqlException or EdgeTune.Federated.Storage.FlDatabaseUnreachableException)
        {
            Console.Error.WriteLine($"fl bench: could not drop the task's rows in PostgreSQL: {e.Message}");
        }
    }

    /// <summary>A silo process; its lines are echoed ("ROUND" lines are kept).</summary>
    /// <param name="cluster">("--primary-port", port or null for a lone silo) or ("--cluster", connection string).</param>
    private static SiloProcess StartSilo(string state, int siloPort, (string Option, object? Value) cluster, string task, int clients, int rounds, List<JsonObject> roundRows)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "EdgeTune.FlSilo.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        var args = new List<(string, object)>
        {
            ("--state", state), ("--token", Token), ("--silo-port", siloPort), ("--min-clients", clients), ("--quorum", clients / 2), ("--rounds", rounds),
            ("--liveness", Liveness.TotalSeconds), ("--deadline", 300), ("--tensors", Tensors), ("--rows", Rank), ("--cols", Width), ("--task", task),
        };
        if (cluster.Value is { } value) args.Add((cluster.Option, value));
        foreach (var (k, v) in args)
        {
            psi.ArgumentList.Add(k);
            psi.ArgumentList.Add(Convert.ToString(v, CultureInfo.InvariantCulture)!);
        }
        var silo = new SiloProcess(Process.Start(psi) ?? throw new InvalidOperationException("could not start the silo process"));
        var reader = new Thread(() =>
        {
            while (silo.Process.StandardOutput.ReadLine() is { } line)
            {
                if (line.StartsWith("URL ", StringComparison.Ordinal)) silo.Url.TrySetResult(line[4..]);
                else if (line == "COORDINATOR") silo.Coordinator.TrySetResult();
                else if (line.StartsWith('{')) silo.Exit.TrySetResult(line);
                else if (line.StartsWith("ROUND ", StringComparison.Ordinal))
                {
                    var row = JsonNode.Parse(line[6..])!.AsObject();
                    lock (roundRows) roundRows.Add(row);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  round {row["round"]}: {row["accepted"]} accepted, {(double)row["seconds"]!:F2} s ({row["closed_by"]})"));
                }
            }
            silo.Url.TrySetException(new InvalidOperationException("fl bench: a silo process ended before serving"));
        }) { IsBackground = true };
        reader.Start();
        return silo;
    }

    /// <summary>Starts the coordinator grain on <paramref name="silo"/>: its first call lands there (local placement).</summary>
    private static void PlaceCoordinator(Uri url, SiloProcess silo)
    {
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(url);
        var rpc = new EdgeTune.Federated.Protocol.FederatedLearning.FederatedLearningClient(channel);
        try { rpc.Heartbeat(new EdgeTune.Federated.Protocol.HeartbeatRequest(), new Grpc.Core.Metadata { { FlServer.ClientIdHeader, "bench" }, { FlServer.CredentialHeader, "none" } }); }
        catch (Grpc.Core.RpcException) { } // unauthenticated, as expected: the call only wakes the coordinator
        silo.Coordinator.Task.Wait(TimeSpan.FromSeconds(60));
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>A process's peak resident set (VmHWM) in bytes, or null when it cannot be read (gone, not Linux).</summary>
    private static long? ReadHwm(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>A process's user + system CPU time in clock ticks (/proc/PID/stat fields 14 and 15), or null when it cannot be read.</summary>
    private static long? ReadCpuTicks(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": field 3 is fields[0]
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return null; }
    }

    /// <summary>USER_HZ, the unit of /proc CPU times: 100 on every Linux the project runs on.</summary>
    private const int ClockTicksPerSecond = 100;

    /// <summary>The 1-minute load average (/proc/loadavg), "?" where it cannot be read: the machine is shared, so every
    /// wall-clock figure goes with it.</summary>
    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "?"; }
        catch (UnauthorizedAccessException) { return "?"; }
    }

    /// <summary>Compares the server's stored rounds with the clients' acknowledgements: each acknowledged upload must be
    /// stored exactly once, each round must have aggregated exactly its stored updates, and each new global must equal the
    /// previous one plus the example-weighted mean of the acknowledged deltas (recomputed here from their seeds, in double).</summary>
    private static (int Lost, int DoubleCounted, double MaxRelativeError) Check(Func<IFlStateStore> open, FlLoadReport report)
    {
        using var store = open();
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
            var sum = new double[UpdateFloats];
            double weight = 0;
            foreach (var a in acked)
            {
                var d = FlLoadClient.Delta(Seed, a.ClientIndex, a.Round, UpdateFloats, UpdateScale);
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
}
