using System.CommandLine;
using System.Text.Json;
using EdgeTune.Cli.Commands;
using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

[CollectionDefinition("EnvironmentAndConsole", DisableParallelization = true)]
public sealed class EnvironmentAndConsoleCollection;

/// <summary><c>edgetune energy</c> run in-process over fake sysfs trees. These tests set
/// EDGETUNE_SYSFS_ROOT and Console.Out, so they do not run in parallel with others.</summary>
[Collection("EnvironmentAndConsole")]
public class EnergyCommandTests
{
    private static FakeSysfs PlantedTree()
    {
        var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 5_000_000, 100_000_000);
        fs.AddRapl("intel-rapl:0:0", "dram", 1_000_000, 100_000_000);
        fs.AddRapl("intel-rapl:1", "package-1", 95_000_000, 100_000_000); // wraps during sampling
        fs.AddMains("AC", online: false);
        fs.AddBattery("BAT0", "Discharging", 64, powerNowUw: 12_000_000, energyNowUwh: 30_000_000);
        fs.AddThermal(0, "x86_pkg_temp", 58.0);
        fs.AddThermal(1, "acpitz", 41.0);
        return fs;
    }

    private static (int Code, string Out, string Err) Invoke(Command command, params string[] args)
    {
        // The command with injected services under a root of its own, errors reported as the edgetune CLI does.
        var root = new RootCommand("test");
        var verbose = new Option<bool>("--verbose") { Recursive = true };
        root.Options.Add(verbose);
        root.Subcommands.Add(command);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = EdgeTune.Cli.CliErrors.Invoke(root, verbose, args, new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void Json_reports_the_planted_meters_and_the_right_average_watts()
    {
        using var fs = PlantedTree();
        var clock = new ManualClock();
        // Between samples the fake counters advance as a machine drawing 10 W + 5 W (packages) and 2 W (dram).
        var delay = clock.AsDelay(d =>
        {
            long us = (long)Math.Round(d.TotalSeconds * 1e6);
            fs.AddRaplEnergy("intel-rapl:0", 10 * us);
            fs.AddRaplEnergy("intel-rapl:1", 5 * us);
            fs.AddRaplEnergy("intel-rapl:0:0", 2 * us);
        });
        var previous = Environment.GetEnvironmentVariable(SysfsRoot.EnvironmentVariable);
        Environment.SetEnvironmentVariable(SysfsRoot.EnvironmentVariable, fs.Root);
        try
        {
            var services = new EnergyCommandServices(clock, delay, new EnergyDiscoveryOptions(ProbeGpu: false));
            var (code, stdout, stderr) = Invoke(EnergyCommand.Create(services), "energy", "--json", "--seconds", "3");

            Assert.Equal(0, code);
            Assert.Contains("sampling", stderr);
            using var doc = JsonDocument.Parse(stdout);
            var o = doc.RootElement;
            Assert.Equal(fs.Root, o.GetProperty("sysfs_root").GetString());
            Assert.Equal(3.0, o.GetProperty("seconds").GetDouble(), 9);
            var meters = o.GetProperty("meters").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
            Assert.Equal(["rapl:total", "rapl:intel-rapl:0", "rapl:intel-rapl:0:0", "rapl:intel-rapl:1", "battery:BAT0", "estimate:cpu-time"],
                o.GetProperty("meters").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
            Assert.Equal(10.0, meters["rapl:intel-rapl:0"].GetProperty("avg_watts").GetDouble(), 6);
            Assert.Equal(5.0, meters["rapl:intel-rapl:1"].GetProperty("avg_watts").GetDouble(), 6);
            Assert.Equal(2.0, meters["rapl:intel-rapl:0:0"].GetProperty("avg_watts").GetDouble(), 6);
            Assert.Equal("Dram", meters["rapl:intel-rapl:0:0"].GetProperty("kind").GetString());
            Assert.Equal(12.0, meters["battery:BAT0"].GetProperty("avg_watts").GetDouble(), 6);
            Assert.Equal("Battery", meters["battery:BAT0"].GetProperty("kind").GetString());
            Assert.True(meters["estimate:cpu-time"].GetProperty("estimate").GetBoolean());
            Assert.False(meters["rapl:intel-rapl:0"].GetProperty("estimate").GetBoolean());
            Assert.True(meters["rapl:intel-rapl:0"].GetProperty("in_total").GetBoolean());
            Assert.False(meters["rapl:intel-rapl:0:0"].GetProperty("in_total").GetBoolean());

            var total = o.GetProperty("total");
            Assert.Equal("rapl:total", total.GetProperty("id").GetString());
            Assert.False(total.GetProperty("estimate").GetBoolean());
            Assert.Equal(15.0, total.GetProperty("avg_watts").GetDouble(), 6);
            Assert.Equal(45.0, total.GetProperty("joules").GetDouble(), 6);
            var samples = o.GetProperty("samples").EnumerateArray().ToList();
            Assert.Equal(6, samples.Count);
            Assert.All(samples, s => Assert.Equal(15.0, s.GetProperty("watts").GetDouble(), 6));

            var ps = o.GetProperty("power_state");
            Assert.False(ps.GetProperty("on_ac").GetBoolean());
            Assert.Equal(64, ps.GetProperty("battery_percent").GetDouble());
            Assert.Equal("Discharging", ps.GetProperty("battery_status").GetString());
            Assert.Equal(58.0, ps.GetProperty("max_temp_c").GetDouble(), 9);
            Assert.Equal(2, o.GetProperty("thermal").GetArrayLength());
        }
        finally
        {
            Environment.SetEnvironmentVariable(SysfsRoot.EnvironmentVariable, previous);
        }
    }

    private static List<string> Keys(JsonElement o) => o.EnumerateObject().Select(p => p.Name).ToList();

    [Fact]
    public void Json_carries_every_key_with_null_for_unknown_values_and_unescaped_text()
    {
        using var fs = PlantedTree();
        var reader = new DenyingFileReader();
        reader.Deny(Path.Combine(fs.Powercap("intel-rapl:0"), "energy_uj"));
        var clock = new ManualClock();
        var services = new EnergyCommandServices(clock, clock.AsDelay(), new EnergyDiscoveryOptions(fs.Sysfs(reader), ProbeGpu: false));
        var (code, stdout, _) = Invoke(EnergyCommand.Create(services), "energy", "--json", "--seconds", "0");

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(stdout);
        var o = doc.RootElement;
        Assert.Equal(["sysfs_root", "seconds", "meters", "total", "samples", "power_state", "thermal", "notes"], Keys(o));
        Assert.Equal(0, o.GetProperty("seconds").GetDouble());
        var meters = o.GetProperty("meters").EnumerateArray().ToList();
        Assert.NotEmpty(meters);
        foreach (var m in meters)
        {
            Assert.Equal(["id", "kind", "label", "source", "estimate", "in_total", "available", "reason", "fix", "joules", "avg_watts"], Keys(m));
            Assert.Equal(JsonValueKind.Null, m.GetProperty("joules").ValueKind); // nothing sampled
            Assert.Equal(JsonValueKind.Null, m.GetProperty("avg_watts").ValueKind);
        }
        var denied = meters.Single(m => m.GetProperty("id").GetString() == "rapl:intel-rapl:0");
        Assert.False(denied.GetProperty("available").GetBoolean());
        Assert.Equal(JsonValueKind.String, denied.GetProperty("reason").ValueKind);
        Assert.Contains("o+r", denied.GetProperty("fix").GetString());
        Assert.Contains("o+r", stdout); // printed as is, not as \u002B
        var readable = meters.First(m => m.GetProperty("available").GetBoolean());
        Assert.Equal(JsonValueKind.Null, readable.GetProperty("reason").ValueKind);
        var total = o.GetProperty("total");
        Assert.Equal(["id", "label", "estimate", "explanation", "joules", "avg_watts"], Keys(total));
        Assert.Equal(JsonValueKind.Null, total.GetProperty("joules").ValueKind);
        Assert.Equal(0, o.GetProperty("samples").GetArrayLength());
        var ps = o.GetProperty("power_state");
        Assert.Equal(["on_ac", "battery_percent", "battery_status", "max_temp_c", "power_watts", "source"], Keys(ps));
        Assert.Equal(JsonValueKind.False, ps.GetProperty("on_ac").ValueKind);
        Assert.Equal(["zone", "type", "celsius"], Keys(o.GetProperty("thermal")[0]));
        Assert.Equal(JsonValueKind.Array, o.GetProperty("notes").ValueKind);
    }

    [Fact]
    public void Text_lists_what_each_meter_measures_and_explains_unreadable_counters()
    {
        using var fs = PlantedTree();
        var reader = new DenyingFileReader();
        reader.Deny(Path.Combine(fs.Powercap("intel-rapl:0"), "energy_uj"));
        reader.Deny(Path.Combine(fs.Powercap("intel-rapl:1"), "energy_uj"));
        var clock = new ManualClock();
        var services = new EnergyCommandServices(clock, clock.AsDelay(),
            new EnergyDiscoveryOptions(fs.Sysfs(reader), ProbeGpu: false));
        var (code, stdout, _) = Invoke(EnergyCommand.Create(services), "energy", "--seconds", "1");

        Assert.Equal(0, code);
        Assert.Contains("CPU package package-0 (intel-rapl:0)", stdout);
        Assert.Contains("memory (DRAM) dram", stdout);
        Assert.Contains("UNAVAILABLE", stdout);
        Assert.Contains("sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj", stdout);
        Assert.Contains("Total: battery:BAT0", stdout); // packages unreadable, on battery: the battery is the total
        Assert.Contains("12.00 W", stdout);
        Assert.Contains("on battery, battery 64% (Discharging), max 58.0 °C", stdout);
    }

    [Fact]
    public void Program_main_runs_energy_with_the_sysfs_root_from_the_environment()
    {
        using var fs = PlantedTree();
        var previous = Environment.GetEnvironmentVariable(SysfsRoot.EnvironmentVariable);
        var stdout = Console.Out;
        var capture = new StringWriter();
        Environment.SetEnvironmentVariable(SysfsRoot.EnvironmentVariable, fs.Root);
        Console.SetOut(capture);
        int code;
        try
        {
            code = EdgeTune.Cli.Program.Main(["energy", "--json", "--seconds", "0"]);
        }
        finally
        {
            Console.SetOut(stdout);
            Environment.SetEnvironmentVariable(SysfsRoot.EnvironmentVariable, previous);
        }
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(capture.ToString()); // stdout holds exactly one JSON object
        var ids = doc.RootElement.GetProperty("meters").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("rapl:intel-rapl:0", ids);
        Assert.Contains("rapl:intel-rapl:1", ids);
        Assert.Contains("battery:BAT0", ids);
        Assert.Equal("rapl:total", doc.RootElement.GetProperty("total").GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("total").GetProperty("avg_watts").ValueKind);
    }

    [Fact]
    public void Negative_seconds_is_refused()
    {
        var clock = new ManualClock();
        var (code, stdout, stderr) = Invoke(EnergyCommand.Create(new EnergyCommandServices(clock, clock.AsDelay())), "energy", "--seconds", "-1");
        Assert.Equal(EdgeTune.Cli.CliErrors.Usage, code);
        Assert.Equal("", stdout);
        Assert.Contains("--seconds", stderr);
    }
}
