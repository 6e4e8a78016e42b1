using System.Buffers;
using System.Text.Json;

namespace EdgeTune.Text.Datasets.Internal;

/// <summary>Builds the JSON object of one CSV or Parquet record, so all containers share <see cref="RowConverter"/>.</summary>
internal sealed class JsonRows
{
    private readonly ArrayBufferWriter<byte> _buffer = new();

    /// <summary>Writes one object with <paramref name="write"/> and parses it back.</summary>
    public JsonDocument Build(Action<Utf8JsonWriter> write)
    {
        _buffer.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(_buffer))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }
        return JsonDocument.Parse(_buffer.WrittenMemory);
    }
}
