using System.Globalization;
using EdgeTune.Energy;

namespace EdgeTune.Tests.Energy;

/// <summary>A fake Linux sysfs tree in a temp folder: RAPL zones, power supplies and thermal zones whose
/// files the tests rewrite between readings. Deleted on dispose.</summary>
internal sealed class FakeSysfs : IDisposable
{
    public FakeSysfs()
    {
        Root = Path.Combine(Path.GetTempPath(), "edgetune-sysfs-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(Root, "sys/class/powercap"));
        Directory.CreateDirectory(Path.Combine(Root, "sys/class/power_supply"));
        Directory.CreateDirectory(Path.Combine(Root, "sys/class/thermal"));
    }

    public string Root { get; }

    public SysfsRoot Sysfs(ISysfsFileReader? reader = null) => new(Root, reader);

    public string Powercap(string zone) => Path.Combine(Root, "sys/class/powercap", zone);

    public string Supply(string name) => Path.Combine(Root, "sys/class/power_supply", name);

    public string Thermal(int index) => Path.Combine(Root, "sys/class/thermal", $"thermal_zone{index}");

    /// <summary>A RAPL zone folder, e.g. ("intel-rapl:0", "package-0") or ("intel-rapl:0:2", "dram").</summary>
    public void AddRapl(string zone, string name, long energyUj, long maxRangeUj = 262_143_328_850)
    {
        var dir = Powercap(zone);
        Directory.CreateDirectory(dir);
        Write(Path.Combine(dir, "name"), name);
        Write(Path.Combine(dir, "max_energy_range_uj"), maxRangeUj.ToString(CultureInfo.InvariantCulture));
        SetRapl(zone, energyUj);
    }

    public void SetRapl(string zone, long energyUj) =>
        Write(Path.Combine(Powercap(zone), "energy_uj"), energyUj.ToString(CultureInfo.InvariantCulture));

    public long GetRapl(string zone) => long.Parse(File.ReadAllText(Path.Combine(Powercap(zone), "energy_uj")).Trim(), CultureInfo.InvariantCulture);

    /// <summary>Adds "delta" µJ to a RAPL counter, wrapping at its max range as the hardware does.</summary>
    public void AddRaplEnergy(string zone, long deltaUj)
    {
        long max = long.Parse(File.ReadAllText(Path.Combine(Powercap(zone), "max_energy_range_uj")).Trim(), CultureInfo.InvariantCulture);
        SetRapl(zone, (GetRapl(zone) + deltaUj) % max);
    }

    public void AddMains(string name, bool online)
    {
        Directory.CreateDirectory(Supply(name));
        Write(Path.Combine(Supply(name), "type"), "Mains");
        SetSupply(name, "online", online ? "1" : "0");
    }

    public void AddBattery(string name, string status, int capacity, long? powerNowUw = null, long? energyNowUwh = null)
    {
        Directory.CreateDirectory(Supply(name));
        Write(Path.Combine(Supply(name), "type"), "Battery");
        SetSupply(name, "status", status);
        SetSupply(name, "capacity", capacity.ToString(CultureInfo.InvariantCulture));
        if (powerNowUw is long p) SetSupply(name, "power_now", p.ToString(CultureInfo.InvariantCulture));
        if (energyNowUwh is long e) SetSupply(name, "energy_now", e.ToString(CultureInfo.InvariantCulture));
    }

    public void SetSupply(string name, string file, string value) => Write(Path.Combine(Supply(name), file), value);

    public void DeleteSupplyFile(string name, string file) => File.Delete(Path.Combine(Supply(name), file));

    public void AddThermal(int index, string type, double celsius)
    {
        Directory.CreateDirectory(Thermal(index));
        Write(Path.Combine(Thermal(index), "type"), type);
        SetThermal(index, celsius);
    }

    public void SetThermal(int index, double celsius) =>
        Write(Path.Combine(Thermal(index), "temp"), ((long)Math.Round(celsius * 1000)).ToString(CultureInfo.InvariantCulture));

    private static void Write(string path, string text) => File.WriteAllText(path, text + "\n");

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Reads the real files but answers "permission denied" for chosen ones, as a non-root user
/// sees /sys/class/powercap/*/energy_uj on recent kernels (tests run as root, where chmod cannot deny).</summary>
internal sealed class DenyingFileReader : ISysfsFileReader
{
    private readonly HashSet<string> _denied = new(StringComparer.Ordinal);

    public void Deny(string path) => _denied.Add(Path.GetFullPath(path));

    public bool Exists(string path) => File.Exists(path);

    public string ReadAllText(string path) =>
        _denied.Contains(Path.GetFullPath(path))
            ? throw new UnauthorizedAccessException($"Access to the path '{path}' is denied.")
            : File.ReadAllText(path);
}

/// <summary>A meter whose counter the test sets, or that follows a power function of a manual clock.</summary>
internal sealed class FakeEnergyMeter : IEnergyMeter
{
    public double Joules { get; set; }

    public bool Fail { get; set; }

    public bool Estimate { get; init; }

    public string Id { get; init; } = "fake";

    public EnergyScope Scope => new(Estimate ? MeasureKind.Estimate : MeasureKind.Package, "fake meter", "test");

    public bool IsEstimate => Estimate;

    public MeterAvailability Availability => Fail ? MeterAvailability.Unavailable("broken") : MeterAvailability.Available;

    public double ReadJoules() => Fail ? throw new EnergyMeterException("fake meter broken") : Joules;
}
