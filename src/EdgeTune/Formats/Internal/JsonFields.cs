using System.Text.Json;

namespace EdgeTune.Formats.Internal;

/// <summary>Typed, optional access to the fields of a JSON object, with errors naming the field and file.
/// A field that is absent or <c>null</c> reads as null.</summary>
internal readonly struct JsonFields(JsonElement obj, string source)
{
    public JsonElement Object { get; } = obj.ValueKind == JsonValueKind.Object
        ? obj
        : throw new CheckpointFormatException(source, $"expected a JSON object at the top level, found {obj.ValueKind}");

    public string Source { get; } = source;

    public CheckpointFormatException Missing(string field) =>
        new(Source, $"required field '{field}' is missing", field);

    private CheckpointFormatException Wrong(string field, string expected, JsonElement got) =>
        new(Source, $"field '{field}' should be {expected}, found {got.ValueKind} {Shorten(got.GetRawText())}", field);

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..40] + "...";

    private bool TryGet(string field, out JsonElement e)
    {
        if (Object.TryGetProperty(field, out e) && e.ValueKind != JsonValueKind.Null) return true;
        e = default;
        return false;
    }

    public string? String(string field)
    {
        if (!TryGet(field, out var e)) return null;
        return e.ValueKind == JsonValueKind.String ? e.GetString() : throw Wrong(field, "a string", e);
    }

    public int? Int(string field)
    {
        if (!TryGet(field, out var e)) return null;
        return AsInt(field, e);
    }

    private int AsInt(string field, JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Number)
        {
            if (e.TryGetInt32(out int i)) return i;
            if (e.TryGetDouble(out double d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw Wrong(field, "an integer (32-bit)", e);
    }

    public double? Double(string field)
    {
        if (!TryGet(field, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) ? d : throw Wrong(field, "a number", e);
    }

    public bool? Bool(string field)
    {
        if (!TryGet(field, out var e)) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(field, "true or false", e),
        };
    }

    public IReadOnlyList<string> StringList(string field)
    {
        if (!TryGet(field, out var e)) return [];
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(field, "a list of strings", e);
        var list = new List<string>();
        foreach (var x in e.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : throw Wrong(field, "a list of strings", x));
        return list;
    }

    public IReadOnlyList<int> IntOrIntList(string field)
    {
        if (!TryGet(field, out var e)) return [];
        if (e.ValueKind == JsonValueKind.Number) return [AsInt(field, e)];
        if (e.ValueKind != JsonValueKind.Array) throw Wrong(field, "an integer or a list of integers", e);
        var list = new List<int>();
        foreach (var x in e.EnumerateArray()) list.Add(AsInt(field, x));
        return list;
    }

    public RopeScaling? RopeScaling(string field)
    {
        if (!TryGet(field, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Object) throw Wrong(field, "an object", e);
        var f = new JsonFields(e, Source);
        string type = f.String("rope_type") ?? f.String("type")
            ?? throw new CheckpointFormatException(Source, $"field '{field}' has neither 'rope_type' nor 'type'", field);
        var rs = new RopeScaling(
            type,
            f.Double("factor") ?? 1.0,
            f.Double("low_freq_factor"),
            f.Double("high_freq_factor"),
            f.Int("original_max_position_embeddings"));
        if (rs.IsLlama3 && (rs.LowFreqFactor is null || rs.HighFreqFactor is null || rs.OriginalMaxPositionEmbeddings is null))
            throw new CheckpointFormatException(Source, $"field '{field}': llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings", field);
        if (!(rs.Factor > 0))
            throw new CheckpointFormatException(Source, $"field '{field}': factor must be positive, got {rs.Factor}", field);
        return rs;
    }
}
