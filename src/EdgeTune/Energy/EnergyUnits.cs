using System.Globalization;

namespace EdgeTune.Energy;

/// <summary>Unit conversions and parsing of energy and power quantities given on command lines
/// ("5Wh", "18kJ", "10W", "500mW").</summary>
public static class EnergyUnits
{
    public const double JoulesPerWattHour = 3600.0;
    public const double JoulesPerKilowattHour = 3_600_000.0;

    public static double ToWattHours(double joules) => joules / JoulesPerWattHour;

    public static double FromWattHours(double wattHours) => wattHours * JoulesPerWattHour;

    /// <summary>Parses an energy: a number with unit J, kJ, MJ, mWh, Wh or kWh (case-insensitive; a bare
    /// number is joules). Returns joules.</summary>
    /// <exception cref="FormatException">Not a positive finite quantity with a known unit.</exception>
    public static double ParseEnergy(string text) => Parse(text, "energy", "J", [
        ("kwh", 3_600_000.0), ("mwh", 3.6), ("wh", 3600.0), ("mj", 1e6), ("kj", 1000.0), ("j", 1.0),
    ]);

    /// <summary>Parses a power: a number with unit mW, W or kW (a bare number is watts). Returns watts.</summary>
    /// <exception cref="FormatException">Not a positive finite quantity with a known unit.</exception>
    public static double ParsePower(string text) => Parse(text, "power", "W", [("kw", 1000.0), ("mw", 1e-3), ("w", 1.0)]);

    private static double Parse(string text, string what, string baseUnit, (string Unit, double Factor)[] units)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var lower = t.ToLowerInvariant();
        double factor = 1;
        // "mWh" vs "MJ": milli for watt-based units, mega for joules, as written in practice.
        foreach (var (unit, f) in units)
        {
            if (lower.EndsWith(unit, StringComparison.Ordinal))
            {
                if (unit == "mj" && !t.EndsWith("MJ", StringComparison.Ordinal))
                    throw new FormatException($"{what} '{text}': write MJ for megajoules (mJ is too small to be meant)");
                factor = f;
                lower = lower[..^unit.Length].Trim();
                break;
            }
        }
        if (!double.TryParse(lower, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !(v > 0) || double.IsInfinity(v))
            throw new FormatException($"{what} '{text}': expected a positive number with a unit, e.g. 5Wh, 18kJ, 10W (bare numbers are {baseUnit})");
        return v * factor;
    }

    /// <summary>"12.3 J", "4.56 kJ", "7.89 MJ".</summary>
    public static string FormatJoules(double joules) => joules switch
    {
        >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{joules / 1e6:0.###} MJ"),
        >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{joules / 1e3:0.###} kJ"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{joules:0.###} J"),
    };
}
