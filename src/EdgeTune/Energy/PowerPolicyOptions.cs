using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>The power policies of a run (the <c>finetune</c> flags). Null / false means off.</summary>
/// <param name="OnlyOnAc"><c>--only-on-ac</c>: pause on battery.</param>
/// <param name="MinBatteryPercent"><c>--min-battery 30</c>: pause at this charge while draining.</param>
/// <param name="BatteryHysteresisPercent">Resume at floor + this.</param>
/// <param name="ResumeOnAc">Battery floor: resume when plugged in, before the charge recovers.</param>
/// <param name="MaxTemperatureCelsius"><c>--max-temp 75</c>: pause at this temperature.</param>
/// <param name="ThermalHysteresisCelsius">Resume at ceiling − this.</param>
/// <param name="PowerCapWatts"><c>--power-cap 10W</c>: hold the average under this.</param>
/// <param name="EnergyBudgetJoules"><c>--energy-budget 5Wh</c>: stop when spent (joules).</param>
/// <param name="PollSeconds">How often a paused run checks whether it may resume.</param>
public sealed record PowerPolicyOptions(
    bool OnlyOnAc = false,
    double? MinBatteryPercent = null,
    double BatteryHysteresisPercent = 5,
    bool ResumeOnAc = true,
    double? MaxTemperatureCelsius = null,
    double ThermalHysteresisCelsius = 5,
    double? PowerCapWatts = null,
    double? EnergyBudgetJoules = null,
    double PollSeconds = 30)
{
    /// <summary>No policy at all.</summary>
    public static PowerPolicyOptions None { get; } = new();

    /// <summary>True when no policy is switched on.</summary>
    public bool IsEmpty => !OnlyOnAc && MinBatteryPercent is null && MaxTemperatureCelsius is null
        && PowerCapWatts is null && EnergyBudgetJoules is null;

    /// <summary>Throws with the field name when a value is out of range.</summary>
    public void Validate()
    {
        if (MinBatteryPercent is double b && !(b >= 0 && b <= 100)) throw new ArgumentOutOfRangeException(nameof(MinBatteryPercent), b, "--min-battery must be a percentage in [0, 100]");
        if (!(BatteryHysteresisPercent >= 0 && BatteryHysteresisPercent <= 100)) throw new ArgumentOutOfRangeException(nameof(BatteryHysteresisPercent), BatteryHysteresisPercent, "battery hysteresis must be in [0, 100]");
        if (MaxTemperatureCelsius is double t && !(t > 0 && t < 150)) throw new ArgumentOutOfRangeException(nameof(MaxTemperatureCelsius), t, "--max-temp must be in (0, 150) °C");
        if (!(ThermalHysteresisCelsius >= 0)) throw new ArgumentOutOfRangeException(nameof(ThermalHysteresisCelsius), ThermalHysteresisCelsius, "thermal hysteresis must be >= 0");
        if (PowerCapWatts is double w && (!(w > 0) || double.IsInfinity(w))) throw new ArgumentOutOfRangeException(nameof(PowerCapWatts), w, "--power-cap must be a finite number of watts > 0");
        if (EnergyBudgetJoules is double j && (!(j > 0) || double.IsInfinity(j))) throw new ArgumentOutOfRangeException(nameof(EnergyBudgetJoules), j, "--energy-budget must be a finite energy > 0");
        if (!(PollSeconds > 0) || double.IsInfinity(PollSeconds)) throw new ArgumentOutOfRangeException(nameof(PollSeconds), PollSeconds, "poll interval must be a finite number of seconds > 0");
    }

    /// <summary>Fresh policy instances for one run (they keep hysteresis state).</summary>
    public IReadOnlyList<IPowerPolicy> CreatePolicies()
    {
        Validate();
        var poll = TimeSpan.FromSeconds(PollSeconds);
        var list = new List<IPowerPolicy>();
        if (EnergyBudgetJoules is double j) list.Add(new EnergyBudgetPolicy(j));
        if (OnlyOnAc) list.Add(new OnlyOnAcPolicy(poll));
        if (MinBatteryPercent is double b) list.Add(new BatteryFloorPolicy(b, BatteryHysteresisPercent, poll, ResumeOnAc));
        if (MaxTemperatureCelsius is double t) list.Add(new ThermalCeilingPolicy(t, ThermalHysteresisCelsius, poll));
        if (PowerCapWatts is double w) list.Add(new PowerCapPolicy(w));
        return list;
    }

    /// <summary>The resolved options in one line for the run log.</summary>
    public override string ToString()
    {
        if (IsEmpty) return "no power policy";
        var ci = CultureInfo.InvariantCulture;
        var parts = new List<string>();
        if (OnlyOnAc) parts.Add("only-on-ac");
        if (MinBatteryPercent is double b) parts.Add(string.Create(ci, $"min-battery {b:0.#}% (resume at {Math.Min(100, b + BatteryHysteresisPercent):0.#}%{(ResumeOnAc ? " or on AC" : "")})"));
        if (MaxTemperatureCelsius is double t) parts.Add(string.Create(ci, $"max-temp {t:0.#} °C (resume at {t - ThermalHysteresisCelsius:0.#} °C)"));
        if (PowerCapWatts is double w) parts.Add(string.Create(ci, $"power-cap {w:0.##} W"));
        if (EnergyBudgetJoules is double j) parts.Add(string.Create(ci, $"energy-budget {EnergyUnits.ToWattHours(j):0.###} Wh"));
        parts.Add(string.Create(ci, $"poll {PollSeconds:0.#} s"));
        return string.Join(", ", parts);
    }
}
