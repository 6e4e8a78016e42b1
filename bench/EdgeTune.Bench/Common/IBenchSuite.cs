namespace EdgeTune.Bench.Common;

/// <summary>One benchmark suite: prints a human table, then exactly one JSON line last.</summary>
public interface IBenchSuite
{
    string Name { get; }
    string Description { get; }
    int Run(BenchOptions options);
}

/// <summary>Options shared by all suites.</summary>
public sealed record BenchOptions(bool Quick, int? Threads, int? Batch = null, int? Clients = null, int? Silos = null, bool KillSilo = false, string? Cluster = null)
{
    public static BenchOptions? Parse(ReadOnlySpan<string> args)
    {
        bool quick = false;
        int? threads = null, batch = null, clients = null, silos = null;
        bool kill = false;
        string? cluster = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--threads" when i + 1 < args.Length && int.TryParse(args[i + 1], out int t) && t > 0:
                    threads = t; i++; break;
                case "--batch" when i + 1 < args.Length && int.TryParse(args[i + 1], out int b) && b > 0:
                    batch = b; i++; break;
                case "--clients" when i + 1 < args.Length && int.TryParse(args[i + 1], out int c) && c > 0:
                    clients = c; i++; break;
                case "--silos" when i + 1 < args.Length && int.TryParse(args[i + 1], out int s) && s > 0:
                    silos = s; i++; break;
                case "--kill-silo": kill = true; break;
                case "--cluster" when i + 1 < args.Length && args[i + 1].Length > 0:
                    cluster = args[i + 1]; i++; break;
                default: return null;
            }
        }
        return new BenchOptions(quick, threads, batch, clients, silos, kill, cluster);
    }
}
