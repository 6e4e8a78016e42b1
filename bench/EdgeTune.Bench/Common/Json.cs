using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeTune.Bench.Common;

/// <summary>Builds and prints the single JSON line that ends every suite's output.</summary>
public static class Json
{
    private static readonly JsonSerializerOptions s_compact = new() { WriteIndented = false };

    /// <summary>A number rounded for printing, or null.</summary>
    public static JsonNode? Number(double? value, int digits = 1) =>
        value is { } v && double.IsFinite(v) ? JsonValue.Create(Math.Round(v, digits)) : null;

    /// <summary>Writes <paramref name="root"/> as one line on stdout (must be the suite's last line).</summary>
    public static void WriteLast(JsonObject root) => Console.WriteLine(root.ToJsonString(s_compact));
}
