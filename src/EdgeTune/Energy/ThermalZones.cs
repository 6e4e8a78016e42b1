using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>One Linux thermal zone reading.</summary>
/// <param name="Zone">The folder name, e.g. "thermal_zone0".</param>
/// <param name="Type">The <c>type</c> file, e.g. "x86_pkg_temp", "acpitz", "cpu-thermal".</param>
/// <param name="Celsius">The <c>temp</c> file (millidegrees) in °C.</param>
public sealed record ThermalReading(string Zone, string Type, double Celsius);

/// <summary>Reads /sys/class/thermal/thermal_zone*/temp (millidegrees Celsius) and type.</summary>
public sealed class ThermalZones
{
    private readonly SysfsRoot _sysfs;

    public ThermalZones(SysfsRoot sysfs) => _sysfs = sysfs;

    /// <summary>The readable zones now; zones whose temp cannot be read, or reads as an implausible value
    /// (some drivers report -273 °C or 0 when a sensor is off), are left out.</summary>
    public IReadOnlyList<ThermalReading> Read()
    {
        var result = new List<ThermalReading>();
        foreach (var dir in _sysfs.Subdirectories(_sysfs.Resolve("sys/class/thermal"), "thermal_zone*"))
        {
            if (_sysfs.TryReadLong(Path.Combine(dir, "temp")) is not long milli) continue;
            double c = milli / 1000.0;
            if (c <= -40 || c >= 200) continue;
            var type = _sysfs.TryReadText(Path.Combine(dir, "type")) ?? "unknown";
            result.Add(new ThermalReading(Path.GetFileName(dir), type, c));
        }
        return result;
    }

    /// <summary>The hottest zone in °C, or null when there is none.</summary>
    public double? MaxCelsius()
    {
        var all = Read();
        return all.Count == 0 ? null : all.Max(r => r.Celsius);
    }

    /// <summary>A one-line summary, e.g. "x86_pkg_temp 54.0 °C, acpitz 45.0 °C".</summary>
    public static string Describe(IEnumerable<ThermalReading> readings) =>
        string.Join(", ", readings.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Type} {r.Celsius:0.0} °C")));
}
