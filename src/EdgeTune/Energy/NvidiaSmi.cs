using System.Diagnostics;
using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>One GPU line of <c>nvidia-smi --query-gpu=power.draw,temperature.gpu --format=csv,noheader,nounits</c>.</summary>
/// <param name="Index">The line's position (nvidia-smi lists GPUs in index order).</param>
/// <param name="PowerWatts">Board power, or null for "[N/A]" / "[Not Supported]".</param>
/// <param name="TemperatureCelsius">GPU temperature, or null.</param>
public sealed record NvidiaSmiSample(int Index, double? PowerWatts, double? TemperatureCelsius);

/// <summary>The nvidia-smi fallback for machines with the NVIDIA tools but where NVML cannot be bound.</summary>
public static class NvidiaSmi
{
    /// <summary>The arguments of the query this class runs and parses.</summary>
    public const string QueryArguments = "--query-gpu=power.draw,temperature.gpu --format=csv,noheader,nounits";

    /// <summary>Parses the query's output: one line per GPU, "power, temperature" (e.g. "35.20, 41").
    /// Values that are not numbers ("[N/A]", "[Not Supported]") become null; blank lines are skipped.</summary>
    /// <exception cref="FormatException">A line does not have two comma-separated fields.</exception>
    public static IReadOnlyList<NvidiaSmiSample> Parse(string output)
    {
        var result = new List<NvidiaSmiSample>();
        int lineNo = 0;
        foreach (var raw in output.Split('\n'))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var fields = line.Split(',');
            if (fields.Length < 2)
                throw new FormatException($"nvidia-smi output line {lineNo}: expected 'power.draw, temperature.gpu', found '{line}'");
            result.Add(new NvidiaSmiSample(result.Count, Number(fields[0]), Number(fields[1])));
        }
        return result;
    }

    private static double? Number(string field)
    {
        var f = field.Trim();
        // Some driver versions keep the unit even with nounits on certain fields.
        if (f.EndsWith('W') || f.EndsWith('C')) f = f[..^1].Trim();
        return double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>The full path of nvidia-smi on PATH, or null.</summary>
    public static string? Locate()
    {
        var exe = OperatingSystem.IsWindows() ? "nvidia-smi.exe" : "nvidia-smi";
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0) continue;
            var p = Path.Combine(dir, exe);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs the query with <paramref name="path"/> and returns its standard output.</summary>
    /// <exception cref="EnergyMeterException">It fails, or takes longer than 5 seconds.</exception>
    public static string RunQuery(string path)
    {
        var psi = new ProcessStartInfo(path, QueryArguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        using var p = Process.Start(psi) ?? throw new EnergyMeterException($"{path}: could not be started");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(5000))
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            throw new EnergyMeterException($"{path} {QueryArguments}: no answer within 5 s");
        }
        if (p.ExitCode != 0)
            throw new EnergyMeterException($"{path} {QueryArguments}: exit code {p.ExitCode}: {stderr.Result.Trim()}");
        return stdout.Result;
    }
}
