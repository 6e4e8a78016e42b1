using System.Text.Json.Serialization;

namespace EdgeTune.Text.Datasets.Internal;

/// <summary>Source-generated JSON for the data types (trim/AOT safe): snake_case keys, enums as strings.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(DataReport))]
[JsonSerializable(typeof(BatcherState))]
internal sealed partial class DatasetJsonContext : JsonSerializerContext;
