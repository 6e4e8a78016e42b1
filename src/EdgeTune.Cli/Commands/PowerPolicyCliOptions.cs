using System.CommandLine;
using System.CommandLine.Parsing;
using EdgeTune.Energy;

namespace EdgeTune.Cli.Commands;

/// <summary>The power-policy and energy-accounting flags of <c>finetune</c> (and any command that trains
/// or generates): <c>--only-on-ac</c>, <c>--min-battery 30</c>, <c>--max-temp 75</c>,
/// <c>--power-cap 10W</c>, <c>--energy-budget 5Wh</c>, <c>--grid-intensity 400</c>, <c>--device-profile</c>.
/// <see cref="AddTo"/> puts them on a command; <see cref="Bind"/> turns a parse result into the option
/// records (CLI flags override <c>defaults</c>, e.g. values from a JSON file).</summary>
public sealed class PowerPolicyCliOptions
{
    public Option<bool> OnlyOnAc { get; } = new("--only-on-ac") { Description = "Train only on mains power; pause (with a checkpoint) on battery and resume when plugged in" };

    public Option<double?> MinBattery { get; } = new("--min-battery")
    {
        Description = "Pause when the battery falls to this percentage while discharging; resume 5 points above it or on mains power",
        HelpName = "PERCENT",
    };

    public Option<double?> MaxTemp { get; } = new("--max-temp")
    {
        Description = "Pause when the hottest sensor reaches this temperature (°C); resume 5 °C below it",
        HelpName = "CELSIUS",
    };

    public Option<double?> PowerCap { get; } = new("--power-cap")
    {
        Description = "Hold the average power under this cap with fewer threads and duty cycling, e.g. 10W",
        HelpName = "WATTS",
        CustomParser = r => ParseQuantity(r, EnergyUnits.ParsePower),
    };

    public Option<double?> EnergyBudget { get; } = new("--energy-budget")
    {
        Description = "Stop cleanly with a checkpoint once this much energy is spent, e.g. 5Wh or 18kJ",
        HelpName = "ENERGY",
        CustomParser = r => ParseQuantity(r, EnergyUnits.ParseEnergy),
    };

    public Option<double?> GridIntensity { get; } = new("--grid-intensity")
    {
        Description = $"Grid carbon intensity in g CO2e per kWh for reports (default {EnergyAccountingOptions.DefaultGridIntensityGramsPerKwh:0}, a world-average figure)",
        HelpName = "G_PER_KWH",
    };

    public Option<string?> DeviceProfile { get; } = new("--device-profile")
    {
        Description = "Power model used only when no energy sensor exists: a built-in name or TDP:CORES such as 28:12",
        HelpName = "PROFILE",
    };

    /// <summary>Adds every flag to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(OnlyOnAc);
        command.Options.Add(MinBattery);
        command.Options.Add(MaxTemp);
        command.Options.Add(PowerCap);
        command.Options.Add(EnergyBudget);
        command.Options.Add(GridIntensity);
        command.Options.Add(DeviceProfile);
    }

    /// <summary>The resolved options: flags given on the command line override <paramref name="defaults"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range (names the flag).</exception>
    /// <exception cref="FormatException">The device profile is not known.</exception>
    public (PowerPolicyOptions Policies, EnergyAccountingOptions Accounting, EdgeTune.Energy.DeviceProfile? Profile) Bind(
        ParseResult parseResult, PowerPolicyOptions? defaults = null, EnergyAccountingOptions? accountingDefaults = null)
    {
        var p = defaults ?? PowerPolicyOptions.None;
        if (parseResult.GetValue(OnlyOnAc)) p = p with { OnlyOnAc = true };
        if (parseResult.GetValue(MinBattery) is double b) p = p with { MinBatteryPercent = b };
        if (parseResult.GetValue(MaxTemp) is double t) p = p with { MaxTemperatureCelsius = t };
        if (parseResult.GetValue(PowerCap) is double w) p = p with { PowerCapWatts = w };
        if (parseResult.GetValue(EnergyBudget) is double j) p = p with { EnergyBudgetJoules = j };
        p.Validate();
        var a = accountingDefaults ?? EnergyAccountingOptions.Default;
        if (parseResult.GetValue(GridIntensity) is double g) a = EnergyAccountingOptions.WithGridIntensity(g);
        a.Validate();
        var profileText = parseResult.GetValue(DeviceProfile);
        var profile = profileText is null ? null : EdgeTune.Energy.DeviceProfile.Parse(profileText);
        return (p, a, profile);
    }

    private static double? ParseQuantity(ArgumentResult result, Func<string, double> parse)
    {
        if (result.Tokens.Count == 0) return null;
        try { return parse(result.Tokens[0].Value); }
        catch (FormatException e)
        {
            result.AddError(e.Message);
            return null;
        }
    }
}
