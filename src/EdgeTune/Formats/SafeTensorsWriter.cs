using System.Buffers.Binary;
using System.Text.Json;
using EdgeTune.Formats.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// Writes <c>.safetensors</c> files: the header JSON (<c>__metadata__</c> first, then the tensors
/// with contiguous data offsets) padded with spaces so that the data section starts at a multiple of
/// 8 bytes, then the raw little-endian tensor bytes. Tensors are laid out by element size, largest
/// first (the given order kept among equals), so that every tensor starts at a multiple of its element
/// size, as the format has no room for padding between tensors. The file appears atomically
/// (written to a temporary sibling, flushed, then renamed over the target).
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes named tensors (names from <see cref="Tensor.Name"/>).</summary>
    public static void Write(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, t)), metadata);

    /// <summary>Writes the tensors under the given names, with optional <c>__metadata__</c>.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(Security.RunFiles.Plain, path, tensors, metadata);

    /// <summary>Writes the tensors through <paramref name="files"/>: encrypted in an encrypted run folder, streaming
    /// (the file is written front to back, so no plaintext copy reaches the disk).</summary>
    public static void Write(Security.RunFiles files, string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        var list = tensors
            .Select((kv, i) => (kv, i))
            .OrderByDescending(x => x.kv.Value.DType.BlockBytes())
            .ThenBy(x => x.i)
            .Select(x => x.kv)
            .ToList();
        byte[] header = BuildHeader(path, list, metadata);
        files.Write(path, fs =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            fs.Write(len);
            fs.Write(header);
            foreach (var (_, t) in list) WriteData(fs, t);
        });
    }

    private static unsafe void WriteData(Stream s, Tensor t) => AtomicFile.WriteBytes(s, (byte*)t.Pointer, t.ByteLength);

    /// <summary>The header JSON, padded with spaces to make 8 + length a multiple of 8.</summary>
    internal static byte[] BuildHeader(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                if (string.IsNullOrEmpty(name))
                    throw new CheckpointFormatException(path, $"cannot write a tensor without a name ({t.DType}{t.ShapeString})");
                if (name == "__metadata__" || !seen.Add(name))
                    throw new CheckpointFormatException(path, name == "__metadata__" ? "'__metadata__' is reserved" : "the name is given twice", name);
                string dtype;
                try { dtype = SafeTensorsFile.DTypeName(t.DType); }
                catch (NotSupportedException e) { throw new CheckpointFormatException(path, e.Message, name); }
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.ByteLength;
            }
            w.WriteEndObject();
        }
        int n = (int)ms.Length;
        int padded = (n + 7) / 8 * 8; // 8 + padded is then a multiple of 8
        var result = new byte[padded];
        ms.GetBuffer().AsSpan(0, n).CopyTo(result);
        result.AsSpan(n).Fill((byte)' ');
        return result;
    }
}
