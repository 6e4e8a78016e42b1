using System.Text.Json;

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
    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("step", Step);
        w.WriteNumber("tokens", Tokens);
        w.WriteNumber("seconds", Seconds);
        w.WriteNumber("joules", Joules);
        w.WriteNumber("wh", WattHours);
        w.WriteNumber("avg_watts", AverageWatts);
        if (JoulesPerToken is double jpt) w.WriteNumber("joules_per_token", jpt); else w.WriteNull("joules_per_token");
        w.WriteNumber("cum_joules", CumulativeJoules);
        w.WriteNumber("cum_wh", CumulativeWattHours);
        w.WriteNumber("co2e_g", Co2eGrams);
        w.WriteBoolean("estimated", Estimated);
        w.WriteString("meter", Meter);
        w.WriteString("time", Time);
        w.WriteEndObject();
    }

    /// <summary>The record as one line of JSON (no trailing newline).</summary>
    public string ToJson() => EnergyJson.Write(WriteJson);
}

/// <summary>Small helper to write a JSON object to a string without reflection (trimming/AOT safe).</summary>
internal static class EnergyJson
{
    public static string Write(Action<Utf8JsonWriter> write, bool indented = false)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
            write(w);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
