namespace EdgeTune.Energy;

/// <summary>The charging state of a battery, as the operating system reports it.</summary>
public enum BatteryStatus
{
    Unknown,
    Charging,
    Discharging,
    NotCharging,
    Full,
    /// <summary>The machine has no battery.</summary>
    NoBattery,
}

/// <summary>One reading of a Linux power supply (/sys/class/power_supply/NAME), in SI units.
/// Fields the kernel does not provide are null.</summary>
/// <param name="Name">The folder name, e.g. "BAT0", "AC", "ADP1".</param>
/// <param name="Type">The <c>type</c> file: "Battery", "Mains", "USB", ...</param>
/// <param name="Online">Mains/USB: the <c>online</c> file (1 = plugged in).</param>
/// <param name="Status">Battery: the <c>status</c> file.</param>
/// <param name="CapacityPercent">Battery: the <c>capacity</c> file (0-100).</param>
/// <param name="PowerWatts">Battery: <c>power_now</c> (µW), or |<c>current_now</c>| (µA) × <c>voltage_now</c> (µV).</param>
/// <param name="EnergyJoules">Battery: <c>energy_now</c> (µWh), or <c>charge_now</c> (µAh) × <c>voltage_now</c> (µV).</param>
public sealed record PowerSupplyReading(
    string Name,
    string Type,
    bool? Online,
    BatteryStatus Status,
    double? CapacityPercent,
    double? PowerWatts,
    double? EnergyJoules)
{
    public bool IsBattery => Type.Equals("Battery", StringComparison.OrdinalIgnoreCase);

    public bool IsMains => Type.Equals("Mains", StringComparison.OrdinalIgnoreCase)
        || Type.StartsWith("USB", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads the supply folder <paramref name="folder"/> (absolute path).</summary>
    public static PowerSupplyReading Read(SysfsRoot sysfs, string folder)
    {
        string F(string file) => Path.Combine(folder, file);
        var name = Path.GetFileName(folder.TrimEnd('/'));
        var type = sysfs.TryReadText(F("type")) ?? "Unknown";
        long? online = sysfs.TryReadLong(F("online"));
        var status = ParseStatus(sysfs.TryReadText(F("status")));
        long? capacity = sysfs.TryReadLong(F("capacity"));
        long? voltage = sysfs.TryReadLong(F("voltage_now"));

        double? power = null;
        if (sysfs.TryReadLong(F("power_now")) is long pw) power = Math.Abs(pw) * 1e-6;
        else if (sysfs.TryReadLong(F("current_now")) is long cur && voltage is long v1)
            power = Math.Abs((double)cur) * 1e-6 * (v1 * 1e-6);

        double? energy = null;
        if (sysfs.TryReadLong(F("energy_now")) is long en) energy = en * 1e-6 * 3600.0;
        else if (sysfs.TryReadLong(F("charge_now")) is long ch && voltage is long v2)
            energy = ch * 1e-6 * (v2 * 1e-6) * 3600.0;

        return new PowerSupplyReading(name, type, online is null ? null : online != 0, status,
            capacity, power, energy);
    }

    /// <summary>All supplies under <c>sys/class/power_supply</c>.</summary>
    public static IReadOnlyList<PowerSupplyReading> ReadAll(SysfsRoot sysfs) =>
        sysfs.Subdirectories(sysfs.Resolve("sys/class/power_supply")).Select(d => Read(sysfs, d)).ToList();

    /// <summary>Maps the kernel's status strings ("Charging", "Discharging", "Not charging", "Full").</summary>
    public static BatteryStatus ParseStatus(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "charging" => BatteryStatus.Charging,
        "discharging" => BatteryStatus.Discharging,
        "not charging" => BatteryStatus.NotCharging,
        "full" => BatteryStatus.Full,
        _ => BatteryStatus.Unknown,
    };
}
