using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Internal;

namespace EdgeTune.Energy;

/// <summary>Energy of one training step (or one batch of generated tokens), for the metrics JSONL.</summary>
/// <param name="Step">The step number given by the caller.</param>
/// <param name="Tokens">Tokens processed in the interval.</param>
/// <param name="Seconds">Length of the interval.</param>
/// <param name="Joules">Energy in the interval.</param>
/// <param name="AverageWatts">Joules / seconds (0 for an empty interval).</param>
/// <param name="JoulesPerToken">Joules / tokens (null without tokens).</param>
/// <param name="CumulativeJoules">Energy of all recorded intervals so far.</param>
/// <param name="Co2eGrams">CO2e of the interval at the accountant's grid intensity.</param>
/// <param name="Estimated">True when the energy is (partly) estimated, not measured.</param>
/// <param name="Meter">The meter's id.</param>
/// <param name="Time">When the interval ended.</param>
public sealed record EnergyStepRecord(
    long Step,
    long Tokens,
    double Seconds,
    double Joules,
    double AverageWatts,
    double? JoulesPerToken,
    double CumulativeJoules,
    double Co2eGrams,
    bool Estimated,
    string Meter,
    DateTimeOffset Time)
{
    public double WattHours => EnergyUnits.ToWattHours(Joules);

    public double CumulativeWattHours => EnergyUnits.ToWattHours(CumulativeJoules);

    /// <summary>Writes the record as one JSON object (snake_case names).</summary>
    public void WriteJson(Utf8JsonWriter w) => JsonSerializer.Serialize(w, EnergyStepJson.From(this), EdgeTuneJson.Default.EnergyStepJson);

    /// <summary>The record as one line of JSON (no trailing newline).</summary>
    public string ToJson() => EdgeTuneJson.Write(EnergyStepJson.From(this), EdgeTuneJson.Default.EnergyStepJson);
}

/// <summary>An <see cref="EnergyStepRecord"/> as JSON: joules_per_token is written as null without tokens; a non-finite figure
/// as the string "NaN"/"Infinity"/"-Infinity".</summary>
internal sealed record EnergyStepJson(
    long Step,
    long Tokens,
    double Seconds,
    double Joules,
    double Wh,
    double AvgWatts,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] double? JoulesPerToken,
    double CumJoules,
    double CumWh,
    [property: JsonPropertyName("co2e_g")] double Co2eG,
    bool Estimated,
    string Meter,
    DateTimeOffset Time)
{
    public static EnergyStepJson From(EnergyStepRecord r) =>
        new(r.Step, r.Tokens, r.Seconds, r.Joules, r.WattHours, r.AverageWatts, r.JoulesPerToken, r.CumulativeJoules,
            r.CumulativeWattHours, r.Co2eGrams, r.Estimated, r.Meter, r.Time);
}
