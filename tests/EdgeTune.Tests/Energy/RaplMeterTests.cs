using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

public class RaplMeterTests
{
    [Fact]
    public void Discovers_packages_and_subzones_with_names_and_kinds()
    {
        using var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 1_000_000);
        fs.AddRapl("intel-rapl:0:0", "core", 500_000);
        fs.AddRapl("intel-rapl:0:1", "uncore", 10_000);
        fs.AddRapl("intel-rapl:0:2", "dram", 20_000);
        fs.AddRapl("intel-rapl:1", "package-1", 2_000_000);
        Directory.CreateDirectory(fs.Powercap("intel-rapl-mmio:0")); // another view of package 0: skipped

        var zones = RaplMeter.Discover(fs.Sysfs());

        Assert.Equal(["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:0:2", "intel-rapl:1"], zones.Select(z => z.ZoneId));
        Assert.Equal([MeasureKind.Package, MeasureKind.Core, MeasureKind.Uncore, MeasureKind.Dram, MeasureKind.Package], zones.Select(z => z.Scope.Kind));
        Assert.Equal([true, false, false, false, true], zones.Select(z => z.IsPackage));
        Assert.Equal("dram", zones[3].ZoneName);
        Assert.Contains("memory", zones[3].Scope.Label);
        Assert.EndsWith(Path.Combine("intel-rapl:0:2", "energy_uj"), zones[3].Scope.Source);
        Assert.All(zones, z => Assert.True(z.Availability.IsAvailable));
        Assert.All(zones, z => Assert.False(z.IsEstimate));
    }

    [Fact]
    public void Counts_joules_from_the_first_reading()
    {
        using var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 123_456_789);
        var m = new RaplMeter(fs.Sysfs(), fs.Powercap("intel-rapl:0"));
        Assert.Equal(0, m.ReadJoules());
        fs.AddRaplEnergy("intel-rapl:0", 2_500_000);
        Assert.Equal(2.5, m.ReadJoules(), 9);
        fs.AddRaplEnergy("intel-rapl:0", 500_000);
        Assert.Equal(3.0, m.ReadJoules(), 9);
        Assert.Equal(3.0, m.ReadJoules(), 9); // no change, no energy
    }

    [Fact]
    public void Unwraps_the_counter_at_max_energy_range()
    {
        using var fs = new FakeSysfs();
        const long max = 10_000_000; // wraps every 10 J
        fs.AddRapl("intel-rapl:0", "package-0", 9_000_000, max);
        var m = new RaplMeter(fs.Sysfs(), fs.Powercap("intel-rapl:0"));
        m.ReadJoules();
        fs.AddRaplEnergy("intel-rapl:0", 3_000_000); // 9 J -> 12 J, stored as 2 J
        Assert.Equal(2_000_000, fs.GetRapl("intel-rapl:0"));
        Assert.Equal(3.0, m.ReadJoules(), 9);
        Assert.Equal(1, m.Wraps);
        // 28 J more in 4 J readings: the 10 J counter wraps twice more and nothing is lost.
        var m2 = new RaplMeter(fs.Sysfs(), fs.Powercap("intel-rapl:0"));
        m2.ReadJoules();
        double total = 0, before = m2.ReadJoules();
        for (int i = 0; i < 7; i++)
        {
            fs.AddRaplEnergy("intel-rapl:0", 4_000_000);
            total = m2.ReadJoules() - before;
        }
        Assert.Equal(28.0, total, 9);
        Assert.True(m2.Wraps >= 2);
    }

    [Fact]
    public void Several_packages_are_summed_into_the_total()
    {
        using var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 0, 50_000_000);
        fs.AddRapl("intel-rapl:0:0", "core", 0);
        fs.AddRapl("intel-rapl:1", "package-1", 49_000_000, 50_000_000);
        var set = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(fs.Sysfs(), new ManualClock(), ProbeGpu: false));

        var total = Assert.IsType<SumEnergyMeter>(set.Total);
        Assert.Equal(["rapl:intel-rapl:0", "rapl:intel-rapl:1"], total.Parts.Select(p => p.Id));
        Assert.False(total.IsEstimate);
        Assert.Contains("2 RAPL CPU package", set.TotalExplanation);
        Assert.Equal(0, total.ReadJoules());
        fs.AddRaplEnergy("intel-rapl:0", 4_000_000);
        fs.AddRaplEnergy("intel-rapl:0:0", 3_000_000); // a sub-zone: part of the package, never added again
        fs.AddRaplEnergy("intel-rapl:1", 6_000_000); // wraps
        Assert.Equal(10.0, total.ReadJoules(), 9);
        Assert.Contains(set.Meters, m => m.Meter.Id == "rapl:intel-rapl:0:0" && !m.InTotal);
        Assert.Contains(set.Meters, m => m.Meter.Id == "estimate:cpu-time" && !m.InTotal);
    }

    [Fact]
    public void Permission_denied_is_explained_with_the_fix_and_discovery_falls_back()
    {
        using var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 1000);
        var reader = new DenyingFileReader();
        reader.Deny(Path.Combine(fs.Powercap("intel-rapl:0"), "energy_uj"));
        var sysfs = fs.Sysfs(reader);

        var m = new RaplMeter(sysfs, fs.Powercap("intel-rapl:0"));
        Assert.False(m.Availability.IsAvailable);
        Assert.Contains("permission denied", m.Availability.Reason);
        Assert.Contains("sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj", m.Availability.Fix);
        Assert.Contains("udev", m.Availability.Fix);
        var e = Assert.Throws<EnergyMeterException>(() => m.ReadJoules());
        Assert.Contains("energy_uj", e.Message);
        Assert.Contains("chmod", e.Message);

        var set = EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(sysfs, new ManualClock(), ProbeGpu: false));
        Assert.Equal("estimate:cpu-time", set.Total.Id);
        Assert.True(set.Total.IsEstimate);
        Assert.Contains(set.Notes, n => n.Contains("permission denied") && n.Contains("chmod o+r"));
        Assert.Contains(set.Meters, d => d.Meter.Id == "rapl:intel-rapl:0" && !d.Meter.Availability.IsAvailable);
    }

    [SkippableFact]
    public void Zones_behind_symbolic_links_are_found_as_on_real_sysfs()
    {
        Skip.If(OperatingSystem.IsWindows(), "symbolic links to folders need privileges on Windows");
        using var fs = new FakeSysfs();
        // Real sysfs: /sys/class/powercap/intel-rapl:0 -> ../../devices/virtual/powercap/intel-rapl/intel-rapl:0
        var device = Path.Combine(fs.Root, "sys/devices/virtual/powercap/intel-rapl/intel-rapl:0");
        Directory.CreateDirectory(device);
        File.WriteAllText(Path.Combine(device, "name"), "package-0\n");
        File.WriteAllText(Path.Combine(device, "energy_uj"), "42\n");
        Directory.CreateSymbolicLink(fs.Powercap("intel-rapl:0"), "../../devices/virtual/powercap/intel-rapl/intel-rapl:0");
        var zone = Assert.Single(RaplMeter.Discover(fs.Sysfs()));
        Assert.Equal("package-0", zone.ZoneName);
        Assert.True(zone.Availability.IsAvailable);
    }

    [SkippableFact]
    public void Chmod_000_on_energy_uj_is_reported_unavailable()
    {
        Skip.If(OperatingSystem.IsWindows(), "Unix file modes only");
        using var fs = new FakeSysfs();
        fs.AddRapl("intel-rapl:0", "package-0", 1000);
        var file = Path.Combine(fs.Powercap("intel-rapl:0"), "energy_uj");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(file, UnixFileMode.None);
        bool canStillRead;
        try { File.ReadAllText(file); canStillRead = true; }
        catch (UnauthorizedAccessException) { canStillRead = false; }
        Skip.If(canStillRead, "running as root: chmod 000 does not deny reads (the injected-reader test covers this case)");
        var m = new RaplMeter(fs.Sysfs(), fs.Powercap("intel-rapl:0"));
        Assert.False(m.Availability.IsAvailable);
        Assert.NotNull(m.Availability.Fix);
    }
}
