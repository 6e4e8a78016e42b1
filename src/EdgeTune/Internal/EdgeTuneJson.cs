using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using EdgeTune.Adapters;
using EdgeTune.Energy;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Security;
using EdgeTune.Text.Datasets;
using EdgeTune.Training;

namespace EdgeTune.Internal;

/// <summary>
/// The library's one source-generated JSON context (trim/AOT safe): snake_case keys, null members left out unless a
/// member says otherwise (<c>[JsonIgnore(Condition = JsonIgnoreCondition.Never)]</c> where a file format writes an
/// explicit null), NaN/±Infinity as the strings "NaN"/"Infinity"/"-Infinity" (JSON has no such numbers), enums as
/// their names. Each file the library writes has a DTO built from its model (rounding and derived values are
/// computed there) and serialized through this context.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(int[]))]
[JsonSerializable(typeof(DataReport))]
[JsonSerializable(typeof(BatcherState))]
[JsonSerializable(typeof(MetricsRowJson))]
[JsonSerializable(typeof(EnergyStepJson))]
[JsonSerializable(typeof(EnergyReportJson))]
[JsonSerializable(typeof(AdapterConfigJson))]
[JsonSerializable(typeof(TrainingOptionsJson))]
[JsonSerializable(typeof(CheckpointManifestJson))]
[JsonSerializable(typeof(TrainingStateJson))]
[JsonSerializable(typeof(GenerationConfigJson))]
[JsonSerializable(typeof(HfConfigJson))]
[JsonSerializable(typeof(RopeScalingJson))]
[JsonSerializable(typeof(RunEncryptionJson))]
internal sealed partial class EdgeTuneJson : JsonSerializerContext
{
    /// <summary><paramref name="value"/> as JSON text: one line, or indented by two spaces (as the files were always written).</summary>
    public static string Write<T>(T value, JsonTypeInfo<T> info, bool indented = false)
    {
        if (!indented) return JsonSerializer.Serialize(value, info);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            JsonSerializer.Serialize(w, value, info);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>An int as a JSON element (for members whose JSON type varies, e.g. eos_token_id: an int or a list).</summary>
    public static JsonElement Element(int value) => JsonSerializer.SerializeToElement(value, Default.Int32);

    /// <summary>An int list as a JSON element.</summary>
    public static JsonElement Element(int[] value) => JsonSerializer.SerializeToElement(value, Default.Int32Array);
}
