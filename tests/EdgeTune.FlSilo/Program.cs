using System.Globalization;
using System.Text.Json;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Cluster;
using EdgeTune.Federated.Server;

// One silo of a federated server (a process of a loopback cluster, or alone). Arguments as "--name value" pairs:
//   --state DIR (shared by every silo of the cluster)  --token T  --port P (gRPC, 0: free)  --silo-port S (0: free)
//   --primary-port PP (the primary silo's port; the primary gives its own --silo-port; omit for a lone silo)
//   --cluster "<Npgsql connection string>" (instead of --primary-port: membership and state in PostgreSQL; --state is
//   then only the local folder of uploads in progress)  --task NAME (the task, default "default")
//   --min-clients N  --quorum Q  --rounds R  --liveness SECONDS  --deadline SECONDS
//   --tensors K --rows A --cols B: K LoRA-like tensors alternating [A, B] and [B, A]
// Prints "URL <url>" once serving, "COORDINATOR" when the task's coordinator starts in this process, "ROUND <json>"
// after each round closed here; on "stop" (or the end of stdin) prints one JSON line with its peak RSS and exits.
var a = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i + 1 < args.Length; i += 2) a[args[i]] = args[i + 1];
string Get(string k, string d) => a.TryGetValue(k, out var v) ? v : d;
int Int(string k, int d) => int.Parse(Get(k, d.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
double Dbl(string k, double d) => double.Parse(Get(k, d.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

int tensors = Int("--tensors", 2), rows = Int("--rows", 4), cols = Int("--cols", 16);
var layout = new UpdateLayout(Enumerable.Range(0, tensors).Select(t => ($"t{t / 2}.lora_{(t % 2 == 0 ? "A" : "B")}.weight", t % 2 == 0 ? new[] { rows, cols } : new[] { cols, rows })));
int minClients = Int("--min-clients", 2);
var server = new FlServerOptions
{
    StateFolder = Get("--state", "fl-state"), EnrolmentToken = Get("--token", "silo-token"), Rounds = Int("--rounds", 1), MinClients = minClients,
    MinQuorum = Int("--quorum", minClients), LivenessTimeout = TimeSpan.FromSeconds(Dbl("--liveness", 30)),
    RoundDeadline = TimeSpan.FromSeconds(Dbl("--deadline", 300)), RateLimitPerSecond = 1000, MaxUpdateNorm = 1e3,
};
var output = TextWriter.Synchronized(Console.Out);
var silo = new FlSiloOptions
{
    Server = server, Layout = layout, SiloPort = Int("--silo-port", 0), PrimarySiloPort = a.ContainsKey("--primary-port") ? Int("--primary-port", 0) : null,
    ClusterConnectionString = a.TryGetValue("--cluster", out var cluster) ? cluster : null, Task = Get("--task", "default"),
    ServerStarted = s =>
    {
        output.WriteLine("COORDINATOR");
        s.RoundCompleted += r => output.WriteLine("ROUND " + JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["round"] = r.Round, ["accepted"] = r.Accepted, ["seconds"] = r.Duration.TotalSeconds, ["closed_by"] = r.ClosedBy,
        }));
    },
};
await using (var host = await FlServerHost.StartSiloAsync(silo, new FlHostOptions { Port = Int("--port", 0) }))
{
    output.WriteLine("URL " + host.Url);
    while (Console.ReadLine() is { } line && line != "stop") { }
}
// the kernel keeps the peak resident set (VmHWM): read once here, where sampling the process every 50 ms cost ~5% of the
// silo's CPU time (Process.GetCurrentProcess parses /proc each time) and could miss a short peak
long peakRss = File.ReadLines("/proc/self/status").Where(l => l.StartsWith("VmHWM:", StringComparison.Ordinal))
    .Select(l => long.Parse(l[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024).FirstOrDefault();
var gc = GC.GetGCMemoryInfo(GCKind.Any);
output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
{
    ["peak_rss_mb"] = Math.Round(peakRss / 1e6, 1), ["allocated_mb"] = Math.Round(GC.GetTotalAllocatedBytes() / 1e6, 1),
    ["gc_heap_mb"] = Math.Round(gc.HeapSizeBytes / 1e6, 1), ["gen2_collections"] = GC.CollectionCount(2),
}));
return 0;
