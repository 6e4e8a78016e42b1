using System.Text.Json;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Quantized;

namespace EdgeTune.Formats;

/// <summary>
/// Reading EdgeTune's quantized safetensors tensors: a weight <c>&lt;hf name&gt;</c> stored as U8 [rows, row bytes]
/// under <c>&lt;hf name&gt;.q</c>, its format and logical shape in the safetensors metadata
/// (<c>{"format":"nf4","shape":[rows, cols]}</c>). The writer is <c>Compression.Quantization.QuantizedCheckpoint</c>.
/// </summary>
public static class QuantizedTensors
{
    /// <summary>Suffix of a quantized tensor's name after the HF weight name.</summary>
    public const string Suffix = ".q";

    /// <summary>When <paramref name="reader"/> holds <c>&lt;name&gt;.q</c> with its metadata, returns the stored U8
    /// bytes [rows, row bytes] (a view where the file is mapped) and the format; checks the shape against
    /// <paramref name="shape"/> (the one the config implies).</summary>
    public static bool TryRead(ICheckpointReader reader, string name, ReadOnlySpan<int> shape, out Tensor? bytes, out QuantFormat format)
    {
        bytes = null;
        format = default;
        string qName = name + Suffix;
        if (reader is GgufFile || !reader.Contains(qName)) return false;
        var metadata = reader switch
        {
            SafeTensorsCheckpoint c => c.Metadata,
            SafeTensorsFile f => f.Metadata,
            _ => null,
        };
        if (metadata is null || !metadata.TryGetValue(qName, out string? json))
            throw new CheckpointFormatException(reader.Source, "a quantized tensor has no format entry in the safetensors metadata", qName);
        int rows, cols;
        try
        {
            using var doc = JsonDocument.Parse(json);
            format = QuantFormats.Parse(doc.RootElement.GetProperty("format").GetString() ?? "");
            var s = doc.RootElement.GetProperty("shape");
            rows = s[0].GetInt32();
            cols = s[1].GetInt32();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or ArgumentException or InvalidOperationException or IndexOutOfRangeException)
        {
            throw new CheckpointFormatException(reader.Source, $"metadata '{json}' is not {{\"format\": name, \"shape\": [rows, cols]}}: {e.Message}", qName);
        }
        if (shape.Length != 2 || shape[0] != rows || shape[1] != cols)
            throw new CheckpointFormatException(reader.Source, $"quantized shape [{rows}, {cols}] differs from the {ShapeException.Format(shape.ToArray())} the config implies", qName);
        var t = reader.GetTensor(qName);
        int rowBytes = format.RowBytes(cols);
        if (t.DType != DType.U8 || t.ElementCount != (long)rows * rowBytes)
        {
            t.Dispose();
            throw new CheckpointFormatException(reader.Source, $"{format.Info().Name} [{rows}, {cols}] needs U8 [{rows}, {rowBytes}], got {t.DType}{t.ShapeString}", qName);
        }
        bytes = t.Rank == 2 && t.Dim(1) == rowBytes ? t : t.Reshape(rows, rowBytes);
        bytes.Name = name;
        return true;
    }

    /// <summary>An owned F32 tensor of the dequantized weight.</summary>
    public static Tensor Dequantize(Tensor bytes, QuantFormat format, ReadOnlySpan<int> shape, string name)
    {
        var m = QuantizedMatrix.FromStorage(format, shape[0], shape[1], bytes.Reshape(bytes.Shape.ToArray()), name);
        var t = m.ToTensor();
        t.Name = name;
        return t;
    }
}
