using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Cli;

/// <summary>
/// The CLI's source-generated JSON context for what the verbs print with <c>--json</c>: snake_case keys, NaN/±Infinity
/// as strings. Unlike the library's files, these objects always carry every key: an unknown value is printed as null
/// (so scripts can rely on the shape).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(EnergyCommandJson))]
[JsonSerializable(typeof(EvalCommandJson))]
internal sealed partial class CliJson : JsonSerializerContext
{
    /// <summary>A context with these settings that leaves non-ASCII text and HTML-sensitive characters unescaped (for
    /// human-read output such as meter labels and sysfs paths). A new one per call: no shared state.</summary>
    public static CliJson CreateRelaxed() => new(new JsonSerializerOptions(Default.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
}
