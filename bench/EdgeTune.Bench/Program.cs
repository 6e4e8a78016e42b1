using EdgeTune.Bench.Common;
using EdgeTune.Bench.Suites;

namespace EdgeTune.Bench;

/// <summary>Benchmark entry: <c>EdgeTune.Bench &lt;suite&gt; [options]</c>. Each suite prints its figures
/// and, as its last line, one JSON object.</summary>
public static class Program
{
    private static readonly IBenchSuite[] s_suites = [new GemmSuite(), new GemmTuneSuite(), new GenerateSuite(), new TrainSuite(), new QuantSuite(), new FlSuite(), new EncryptSuite(), new DpSuite()];

    /// <summary>Suites with their own argument handling (older entry points).</summary>
    private static readonly Dictionary<string, Func<string[], int>> s_raw = new()
    {
        ["attention"] = AttentionSuite.Run,
        ["encoder"] = EncoderSuite.Run,
        ["gemv"] = GemvSuite.Run,
        ["optimizer"] = OptimizerBench.Run,
        ["pointwise"] = _ => PointwiseSuite.Run(),
        ["ptq"] = PtqSuite.Run,
    };

    public static int Main(string[] args)
    {
        if (args.Length > 0 && s_raw.TryGetValue(args[0], out var raw)) return raw(args[1..]);
        if (args.Length == 0 || s_suites.FirstOrDefault(s => s.Name == args[0]) is not { } suite)
        {
            Console.Error.WriteLine("usage: EdgeTune.Bench <suite> [options]");
            foreach (var s in s_suites) Console.Error.WriteLine($"  {s.Name,-10} {s.Description}");
            foreach (var name in s_raw.Keys) Console.Error.WriteLine($"  {name}");
            Console.Error.WriteLine("options: --quick (fewer repetitions), --threads N (only that thread count), --batch N (train: micro-batch), --clients N (fl: load clients), --silos S and --kill-silo (fl: silo processes, one killed mid-round), --cluster \"<Npgsql connection string>\" (fl: membership and state in PostgreSQL)");
            return 2;
        }
        var options = BenchOptions.Parse(args.AsSpan(1));
        if (options is null)
        {
            Console.Error.WriteLine($"unknown option in: {string.Join(' ', args.Skip(1))}");
            return 2;
        }
        return suite.Run(options);
    }
}
