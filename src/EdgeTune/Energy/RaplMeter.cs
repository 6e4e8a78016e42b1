namespace EdgeTune.Energy;

/// <summary>One Linux RAPL zone under /sys/class/powercap (a package "intel-rapl:N" or a sub-zone
/// "intel-rapl:N:M" such as core, uncore or dram). The kernel's <c>energy_uj</c> is a microjoule counter
/// that wraps to 0 after <c>max_energy_range_uj</c>; this meter unwraps it into a monotonic count of
/// joules since its first reading. It must be read at least once per wrap period (minutes to hours,
/// depending on the package; every training step is far more often).</summary>
public sealed class RaplMeter : IEnergyMeter
{
    private readonly object _gate = new();
    private readonly SysfsRoot _sysfs;
    private readonly string _energyFile;
    private long? _lastRaw;
    private double _joules;
    private MeterAvailability _availability;

    /// <summary>A meter over the zone folder <paramref name="zoneFolder"/> (absolute path).</summary>
    public RaplMeter(SysfsRoot sysfs, string zoneFolder)
    {
        _sysfs = sysfs;
        ZoneFolder = zoneFolder;
        ZoneId = Path.GetFileName(zoneFolder.TrimEnd('/'));
        _energyFile = Path.Combine(zoneFolder, "energy_uj");
        ZoneName = sysfs.TryReadText(Path.Combine(zoneFolder, "name")) ?? ZoneId;
        MaxEnergyRangeMicrojoules = sysfs.TryReadLong(Path.Combine(zoneFolder, "max_energy_range_uj")) ?? 0;
        IsPackage = ZoneId.Count(c => c == ':') == 1;
        Scope = new EnergyScope(KindOf(ZoneName, IsPackage), LabelOf(ZoneName, ZoneId), _energyFile);
        var problem = sysfs.ProbeReadable(_energyFile);
        _availability = problem is null
            ? MeterAvailability.Available
            : problem.EndsWith("permission denied", StringComparison.Ordinal)
                ? MeterAvailability.Unavailable(problem, MeterAvailability.RaplPermissionFix)
                : MeterAvailability.Unavailable(problem);
    }

    /// <summary>The zone folder, e.g. "/sys/class/powercap/intel-rapl:0".</summary>
    public string ZoneFolder { get; }

    /// <summary>The zone's folder name, e.g. "intel-rapl:0" or "intel-rapl:0:2".</summary>
    public string ZoneId { get; }

    /// <summary>The kernel's name of the zone ("package-0", "core", "uncore", "dram", "psys").</summary>
    public string ZoneName { get; }

    /// <summary>The counter's wrap point in µJ (0 when the file is missing: wraps are then not unwrapped).</summary>
    public long MaxEnergyRangeMicrojoules { get; }

    /// <summary>True for a top-level zone (intel-rapl:N), false for a sub-zone (intel-rapl:N:M).</summary>
    public bool IsPackage { get; }

    /// <summary>Number of counter wraps seen so far.</summary>
    public int Wraps { get; private set; }

    public string Id => "rapl:" + ZoneId;

    public EnergyScope Scope { get; }

    public bool IsEstimate => false;

    public MeterAvailability Availability { get { lock (_gate) return _availability; } }

    public double ReadJoules()
    {
        lock (_gate)
        {
            long raw;
            try { raw = _sysfs.ReadLong(_energyFile, MeterAvailability.RaplPermissionFix); }
            catch (EnergyMeterException e)
            {
                _availability = MeterAvailability.Unavailable(e.Message);
                throw;
            }
            if (_lastRaw is long last)
            {
                long delta = raw - last;
                if (delta < 0)
                {
                    // The counter wrapped at max_energy_range_uj (or was reset); count the part up to the wrap point.
                    delta = MaxEnergyRangeMicrojoules > last ? MaxEnergyRangeMicrojoules - last + raw : raw;
                    Wraps++;
                }
                _joules += delta * 1e-6;
            }
            _lastRaw = raw;
            return _joules;
        }
    }

    /// <summary>All RAPL zones under <c>sys/class/powercap</c> of <paramref name="sysfs"/>: packages first,
    /// each followed by its sub-zones. Other powercap control types (e.g. "intel-rapl-mmio", a second view
    /// of the same package counter) are skipped so energy is not counted twice.</summary>
    public static IReadOnlyList<RaplMeter> Discover(SysfsRoot sysfs)
    {
        var folder = sysfs.Resolve("sys/class/powercap");
        var result = new List<RaplMeter>();
        foreach (var dir in sysfs.Subdirectories(folder, "intel-rapl:*"))
        {
            if (!sysfs.Exists(Path.Combine(dir, "energy_uj"))) continue;
            result.Add(new RaplMeter(sysfs, dir));
        }
        return result;
    }

    private static MeasureKind KindOf(string name, bool isPackage)
    {
        if (name.StartsWith("package", StringComparison.OrdinalIgnoreCase)) return MeasureKind.Package;
        if (name.Equals("psys", StringComparison.OrdinalIgnoreCase)) return MeasureKind.WholeSystem;
        if (name.Equals("core", StringComparison.OrdinalIgnoreCase)) return MeasureKind.Core;
        if (name.Equals("uncore", StringComparison.OrdinalIgnoreCase)) return MeasureKind.Uncore;
        if (name.Equals("dram", StringComparison.OrdinalIgnoreCase)) return MeasureKind.Dram;
        return isPackage ? MeasureKind.Package : MeasureKind.Core;
    }

    private static string LabelOf(string name, string zoneId)
    {
        var kind = name.ToLowerInvariant() switch
        {
            var n when n.StartsWith("package", StringComparison.Ordinal) => "CPU package",
            "psys" => "whole platform (psys)",
            "core" => "CPU cores",
            "uncore" => "uncore / integrated GPU",
            "dram" => "memory (DRAM)",
            _ => "RAPL zone",
        };
        return $"{kind} {name} ({zoneId})";
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}, {Availability}";
}
