namespace EdgeTune.Energy;

/// <summary>The power state on Linux from /sys/class/power_supply (mains online, battery capacity,
/// status and power) and /sys/class/thermal (hottest zone).</summary>
public sealed class LinuxPowerStateSource : IPowerStateSource
{
    private readonly SysfsRoot _sysfs;
    private readonly ThermalZones _thermal;

    public LinuxPowerStateSource(SysfsRoot sysfs)
    {
        _sysfs = sysfs;
        _thermal = new ThermalZones(sysfs);
    }

    public PowerState Read()
    {
        var supplies = PowerSupplyReading.ReadAll(_sysfs);
        var mains = supplies.Where(s => s.IsMains && s.Online is not null).ToList();
        var battery = supplies.FirstOrDefault(s => s.IsBattery);
        bool? onAc = mains.Count > 0 ? mains.Any(m => m.Online == true) : null;
        if (onAc is null && battery is not null)
        {
            // No mains supply listed: infer from the battery.
            onAc = battery.Status switch
            {
                BatteryStatus.Discharging => false,
                BatteryStatus.Charging or BatteryStatus.Full or BatteryStatus.NotCharging => true,
                _ => null,
            };
        }
        double? power = battery is { Status: BatteryStatus.Discharging } ? battery.PowerWatts : null;
        return new PowerState(
            onAc,
            battery?.CapacityPercent,
            battery?.Status ?? BatteryStatus.NoBattery,
            _thermal.MaxCelsius(),
            power,
            _sysfs.Resolve("sys/class/power_supply"));
    }
}
