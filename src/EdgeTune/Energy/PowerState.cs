using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>A snapshot of the machine's power situation, as the policies see it. Unknown fields are null.</summary>
/// <param name="OnAc">True on mains power, false on battery, null when unknown (e.g. a desktop that reports nothing).</param>
/// <param name="BatteryPercent">Charge of the (first) system battery, 0-100.</param>
/// <param name="BatteryStatus">Charging state; <see cref="Energy.BatteryStatus.NoBattery"/> when there is none.</param>
/// <param name="MaxTemperatureCelsius">The hottest thermal sensor.</param>
/// <param name="PowerWatts">Current power draw when a sensor gives it directly (battery power while discharging).</param>
/// <param name="Source">Where it was read, e.g. "/sys/class/power_supply", "GetSystemPowerStatus", "pmset -g batt".</param>
public sealed record PowerState(
    bool? OnAc,
    double? BatteryPercent,
    BatteryStatus BatteryStatus,
    double? MaxTemperatureCelsius,
    double? PowerWatts,
    string Source = "")
{
    /// <summary>Nothing known.</summary>
    public static PowerState Unknown { get; } = new(null, null, BatteryStatus.Unknown, null, null, "none");

    /// <summary>True when the machine is known to run from its battery.</summary>
    public bool OnBattery => OnAc == false || (OnAc is null && BatteryStatus == BatteryStatus.Discharging);

    public override string ToString()
    {
        var ci = CultureInfo.InvariantCulture;
        var parts = new List<string>
        {
            OnAc switch { true => "on AC", false => "on battery", null => "power source unknown" },
        };
        if (BatteryPercent is double b) parts.Add(string.Create(ci, $"battery {b:0}% ({BatteryStatus})"));
        else if (BatteryStatus == BatteryStatus.NoBattery) parts.Add("no battery");
        if (MaxTemperatureCelsius is double t) parts.Add(string.Create(ci, $"max {t:0.0} °C"));
        if (PowerWatts is double p) parts.Add(string.Create(ci, $"{p:0.00} W"));
        return string.Join(", ", parts);
    }
}

/// <summary>Anything that can tell the current <see cref="PowerState"/>.</summary>
public interface IPowerStateSource
{
    PowerState Read();
}

/// <summary>A source that returns whatever state it was last given: for tests and simulations.</summary>
public sealed class FixedPowerStateSource : IPowerStateSource
{
    public FixedPowerStateSource(PowerState state) => State = state;

    public PowerState State { get; set; }

    public PowerState Read() => State;
}
