using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Internal;

namespace EdgeTune.Energy;

/// <summary>The energy summary of a run, for the final report.</summary>
/// <param name="Steps">Intervals recorded.</param>
/// <param name="Tokens">Tokens in all intervals.</param>
/// <param name="Seconds">Time in all recorded intervals (pauses excluded).</param>
/// <param name="Joules">Energy in all recorded intervals.</param>
/// <param name="AverageWatts">Joules / seconds.</param>
/// <param name="JoulesPerToken">Joules / tokens (null without tokens).</param>
/// <param name="Co2eGrams">CO2e at <paramref name="GridIntensityGramsPerKwh"/>.</param>
/// <param name="GridIntensityGramsPerKwh">The intensity used.</param>
/// <param name="GridIntensityIsDefault">True when it is the built-in default, not the user's figure.</param>
/// <param name="ExcludedSeconds">Time left out of the intervals (pauses), see <see cref="EnergyAccountant.Skip"/>.</param>
/// <param name="ExcludedJoules">Energy used while left out (the machine idling in pauses).</param>
/// <param name="Estimated">True when any figure is (partly) estimated.</param>
/// <param name="Meter">Id of the meter(s) used.</param>
/// <param name="MeterDescription">What the meter measures.</param>
/// <param name="Warnings">E.g. a meter that failed and was replaced by the estimator.</param>
public sealed record EnergyReport(
    long Steps,
    long Tokens,
    double Seconds,
    double Joules,
    double AverageWatts,
    double? JoulesPerToken,
    double Co2eGrams,
    double GridIntensityGramsPerKwh,
    bool GridIntensityIsDefault,
    double ExcludedSeconds,
    double ExcludedJoules,
    bool Estimated,
    string Meter,
    string MeterDescription,
    IReadOnlyList<string> Warnings)
{
    public double WattHours => EnergyUnits.ToWattHours(Joules);

    /// <summary>One paragraph for people, e.g. "energy 3.6 kJ (1.000 Wh), 10.00 W average over 360.0 s,
    /// 0.36 J/token, 0.40 g CO2e at 400 g/kWh (default grid intensity); measured by rapl:intel-rapl:0 (...)".</summary>
    public string Describe()
    {
        var ci = CultureInfo.InvariantCulture;
        var s = string.Create(ci, $"energy {EnergyUnits.FormatJoules(Joules)} ({WattHours:0.000} Wh){(Estimated ? " ESTIMATED" : "")}, ");
        s += string.Create(ci, $"{AverageWatts:0.00} W average over {Seconds:0.0} s");
        if (JoulesPerToken is double jpt) s += string.Create(ci, $", {jpt:0.####} J/token");
        s += string.Create(ci, $", {Co2eGrams:0.###} g CO2e at {GridIntensityGramsPerKwh:0} g/kWh");
        if (GridIntensityIsDefault) s += " (default grid intensity)";
        s += $"; {(Estimated ? "estimated" : "measured")} by {Meter} ({MeterDescription})";
        if (ExcludedSeconds > 0) s += string.Create(ci, $"; pauses excluded: {ExcludedSeconds:0.0} s, {EnergyUnits.FormatJoules(ExcludedJoules)}");
        foreach (var w in Warnings) s += "; warning: " + w;
        return s;
    }

    /// <summary>Writes the report as one JSON object (snake_case names).</summary>
    public void WriteJson(Utf8JsonWriter w) => JsonSerializer.Serialize(w, EnergyReportJson.From(this), EdgeTuneJson.Default.EnergyReportJson);

    public string ToJson(bool indented = false) => EdgeTuneJson.Write(EnergyReportJson.From(this), EdgeTuneJson.Default.EnergyReportJson, indented);
}

/// <summary>An <see cref="EnergyReport"/> as JSON: joules_per_token is written as null without tokens; a non-finite figure
/// as the string "NaN"/"Infinity"/"-Infinity".</summary>
internal sealed record EnergyReportJson(
    long Steps,
    long Tokens,
    double Seconds,
    double Joules,
    double Wh,
    double AvgWatts,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] double? JoulesPerToken,
    [property: JsonPropertyName("co2e_g")] double Co2eG,
    double GridGPerKwh,
    bool GridIntensityIsDefault,
    double ExcludedSeconds,
    double ExcludedJoules,
    bool Estimated,
    string Meter,
    string MeterDescription,
    IReadOnlyList<string> Warnings)
{
    public static EnergyReportJson From(EnergyReport r) =>
        new(r.Steps, r.Tokens, r.Seconds, r.Joules, r.WattHours, r.AverageWatts, r.JoulesPerToken, r.Co2eGrams,
            r.GridIntensityGramsPerKwh, r.GridIntensityIsDefault, r.ExcludedSeconds, r.ExcludedJoules, r.Estimated, r.Meter,
            r.MeterDescription, r.Warnings);
}
