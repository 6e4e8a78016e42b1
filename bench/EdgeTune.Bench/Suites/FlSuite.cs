using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeTune.Bench.Common;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Federated.Server;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Bench.Suites;

/// <summary>
/// Federated server under load: 100 clients over loopback gRPC (HTTP/2), 30% of them dropping out of each round
/// (half before training, half mid-upload; they come back later and resume), several FedAvg rounds of a
/// synthetic LoRA-sized update (rank-8 q/v adapters of a 576-wide, 30-layer model: 552,960 floats, 2.2 MB as f32).
/// The server runs in a child process (same executable) so its peak RSS and managed heap are its own.
/// Clients "train" instantly (a seeded random delta), so round time is the protocol's: uploads, validation,
/// SQLite commits, aggregation, and the straggler wait (liveness timeout 2 s) when dropouts hold a round open.
/// </summary>
public sealed class FlSuite : IBenchSuite
{
    private const string ChildVariable = "EDGETUNE_BENCH_FL_SERVER";
    private const string Token = "bench-token";
    private const int Clients = 100;
    private const double Dropout = 0.3;
    private static readonly TimeSpan Liveness = TimeSpan.FromSeconds(2);

    public string Name => "fl";
    public string Description => "federated server: 100 loopback gRPC clients, 30% dropout, round time and server peak memory";

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
        if (Environment.GetEnvironmentVariable(ChildVariable) is { Length: > 0 } folder) return RunServer(folder, rounds);
        var layout = Layout();
        Console.WriteLine($"fl suite: {Clients} clients over loopback gRPC, dropout {Dropout:P0}, {rounds} rounds of FedAvg, update {layout.TotalLength:N0} floats ({layout.TotalLength * 4 / 1e6:F1} MB f32), " +
            $"liveness timeout {Liveness.TotalSeconds} s; server in a child process; {Environment.ProcessorCount} processors (shared machine: wall-clock figures are noisy)");
        string state = Path.Combine(Path.GetTempPath(), "edgetune-bench-fl-" + Guid.NewGuid().ToString("N")[..8]);
        string exe = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase)) psi.ArgumentList.Add(typeof(FlSuite).Assembly.Location);
        psi.ArgumentList.Add("fl");
        if (options.Quick) psi.ArgumentList.Add("--quick");
        psi.Environment[ChildVariable] = state;
        using var child = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {exe}");
        try
        {
            string url = "";
            while (child.StandardOutput.ReadLine() is { } line)
                if (line.StartsWith("URL ", StringComparison.Ordinal)) { url = line[4..]; break; }
            if (url.Length == 0) throw new InvalidOperationException("fl bench: the server process did not start");

            var sw = Stopwatch.StartNew();
            var clients = Enumerable.Range(0, Clients).Select(i =>
            {
                var rng = new Rng(1000 + (ulong)i);
                return new FlClient(new FlClientOptions
                {
                    Server = new Uri(url), Token = Token, DisplayName = $"bench-{i}", HeartbeatInterval = TimeSpan.FromMilliseconds(500),
                    DropoutSilence = Liveness * 2, EvaluateGlobal = false, RetryFor = TimeSpan.FromMinutes(2),
                    Dropout = _ => rng.NextDouble() >= Dropout ? FlDropout.None : rng.NextDouble() < 0.5 ? FlDropout.BeforeTraining : FlDropout.MidUpload,
                }, new SyntheticTrainer((ulong)i));
            }).ToList();
            var summaries = Task.WhenAll(clients.Select(c => c.RunAsync())).GetAwaiter().GetResult();
            double total = sw.Elapsed.TotalSeconds;
            foreach (var c in clients) c.Dispose();

            string? last = null;
            while (child.StandardOutput.ReadLine() is { } line)
            {
                Console.WriteLine(line);
                if (line.StartsWith('{')) last = line;
            }
            child.WaitForExit();
            var server = last is null ? new JsonObject() : JsonNode.Parse(last)!.AsObject();
            int accepted = summaries.Sum(s => s.Accepted), dropped = summaries.Sum(s => s.Dropped);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"clients: {accepted} updates accepted, {dropped} dropouts, {summaries.Sum(s => s.Rejections.Count)} rejections; total {total:F1} s"));
            var root = new JsonObject
            {
                ["suite"] = "fl", ["clients"] = Clients, ["dropout"] = Dropout, ["rounds"] = rounds, ["update_floats"] = layout.TotalLength,
                ["liveness_s"] = Liveness.TotalSeconds, ["accepted"] = accepted, ["dropouts"] = dropped, ["total_s"] = Json.Number(total, 2),
                ["server"] = server,
            };
            Json.WriteLast(root);
            return 0;
        }
        finally
        {
            if (!child.HasExited) child.Kill();
            try { Directory.Delete(state, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The child: serves the rounds, samples its own memory, prints its rounds and one JSON line.</summary>
    private static int RunServer(string folder, int rounds)
    {
        var layout = Layout();
        long peakManaged = 0;
        using var sampler = new Timer(_ => { long m = GC.GetTotalMemory(false); if (m > Interlocked.Read(ref peakManaged)) Interlocked.Exchange(ref peakManaged, m); },
            null, 0, 20);
        var options = new FlServerOptions
        {
            StateFolder = folder, EnrolmentToken = Token, Rounds = rounds, MinClients = Clients, MinQuorum = Clients / 2,
            LivenessTimeout = Liveness, RoundDeadline = TimeSpan.FromMinutes(5), RateLimitPerSecond = 1000, MaxUpdateNorm = 1e3,
        };
        using var server = new FlServer(options, layout, new float[layout.TotalLength]);
        var rows = new JsonArray();
        server.RoundCompleted += r =>
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {r.Round}: {r.Accepted}/{r.Selected} accepted, {r.Rejected} rejected, {r.Duration.TotalSeconds:F2} s ({r.ClosedBy}), server RSS {Environment.WorkingSet / 1e6:F0} MB"));
            lock (rows) rows.Add(new JsonObject { ["round"] = r.Round, ["accepted"] = r.Accepted, ["seconds"] = Json.Number(r.Duration.TotalSeconds, 2), ["closed_by"] = r.ClosedBy });
        };
        var host = FlServerHost.StartAsync(server).GetAwaiter().GetResult();
        Console.WriteLine("URL " + host.Url);
        server.Completion.GetAwaiter().GetResult();
        Thread.Sleep(1000); // let clients hear "done"
        host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var times = server.Results().Select(r => r.Duration.TotalSeconds).ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"server: mean round {times.Average():F2} s, peak RSS {ProcessMemory.PeakRssBytes() / 1e6:F0} MB, peak managed heap {peakManaged / 1e6:F0} MB"));
        Json.WriteLast(new JsonObject
        {
            ["rounds"] = rows, ["mean_round_s"] = Json.Number(times.Average(), 2), ["peak_rss_mb"] = Json.Number(ProcessMemory.PeakRssBytes() / 1e6, 1),
            ["peak_managed_mb"] = Json.Number(peakManaged / 1e6, 1),
        });
        return 0;
    }

    /// <summary>"Training" that returns a seeded random delta at once.</summary>
    private sealed class SyntheticTrainer(ulong seed) : ILocalTrainer
    {
        public long NumExamples => 100 + (long)(seed % 50);

        public LocalFitResult Fit(LocalFitRequest request, CancellationToken cancellationToken)
        {
            var rng = new Rng(seed * 7919 + (ulong)request.Round);
            var d = new float[request.Global.Length];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(rng.NextGaussian() * 1e-3);
            return new LocalFitResult(d, NumExamples, new Dictionary<string, double> { ["train_loss"] = 1.0 });
        }
    }
}
