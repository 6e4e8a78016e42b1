using System.Text.Json;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// One memory-mapped <c>.safetensors</c> file: an 8-byte little-endian header length N, N bytes of
/// JSON (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>),
/// then the data section that the offsets index. Tensors are read-only views into the mapping.
/// </summary>
/// <remarks>
/// Validation on open: the header fits the file, the JSON is an object, no name is repeated, each
/// dtype is known (F64, F32, F16, BF16, I64, I32, U8), each byte range is inside the data section,
/// matches shape × dtype size and overlaps no other. Errors are <see cref="CheckpointFormatException"/>
/// naming the file and tensor. Holes between tensors are accepted.
/// </remarks>
public sealed class SafeTensorsFile : ICheckpointReader
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly TensorStorage _storage;
    private readonly Dictionary<string, (TensorInfo Info, long Offset)> _byName;
    private readonly List<TensorInfo> _tensors;

    private SafeTensorsFile(string path, TensorStorage storage, List<TensorInfo> tensors,
        Dictionary<string, (TensorInfo, long)> byName, IReadOnlyDictionary<string, string> metadata)
    {
        Source = path;
        _storage = storage;
        _tensors = tensors;
        _byName = byName;
        Metadata = metadata;
    }

    public string Source { get; }

    /// <summary>Hugging Face safetensors hold Llama q/k rows in the half-split RoPE layout.</summary>
    public RopeStyle RopeLayout => RopeStyle.HalfSplit;

    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public Tensor GetTensor(string name)
    {
        if (!_byName.TryGetValue(name, out var e))
            throw new KeyNotFoundException($"{Source}: no tensor named '{name}' ({_tensors.Count} tensors in the file)");
        return Tensor.View(_storage, e.Offset, e.Info.DType, e.Info.Shape, name);
    }

    public void Dispose() => _storage.Dispose();

    /// <summary>Maps and validates a safetensors file.</summary>
    public static SafeTensorsFile Open(string path) => Parse(path, TensorStorage.MapFile(path));

    /// <summary>
    /// Opens a safetensors file kept encrypted at rest (<see cref="Security.EncryptedFile"/>): it is decrypted
    /// into anonymous native memory, zeroed on dispose, since ciphertext cannot be memory-mapped. Costs the
    /// file's size in RAM; tensors are read-only views as with <see cref="Open"/>.
    /// </summary>
    /// <param name="logicalName">The name the file was encrypted under (its relative path in the run folder).</param>
    public static SafeTensorsFile OpenEncrypted(string path, string logicalName, Security.EncryptionKey key) =>
        Parse(path, Security.EncryptedFile.DecryptToMemory(path, logicalName, key));

    /// <summary>Validates the safetensors bytes in <paramref name="storage"/>, which it then owns.</summary>
    private static unsafe SafeTensorsFile Parse(string path, TensorStorage storage)
    {
        try
        {
            long fileLength = storage.ByteLength;
            if (fileLength < 8)
                throw new CheckpointFormatException(path, $"file is {fileLength} bytes, too short for the 8-byte header length");
            ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(storage.Pointer, 8));
            if (n > (ulong)(fileLength - 8))
                throw new CheckpointFormatException(path, $"header length {n} goes beyond the end of the file ({fileLength} bytes)");
            if (n > MaxHeaderBytes)
                throw new CheckpointFormatException(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit");
            long dataStart = 8 + (long)n;
            long dataLength = fileLength - dataStart;
            var header = new ReadOnlySpan<byte>(storage.Pointer + 8, (int)n);

            if (!System.Text.Unicode.Utf8.IsValid(header))
                throw new CheckpointFormatException(path, "header is not valid UTF-8");
            JsonDocument doc;
            try { doc = JsonDocument.Parse(header.ToArray()); }
            catch (JsonException e) { throw new CheckpointFormatException(path, $"header is not valid JSON: {e.Message}", inner: e); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new CheckpointFormatException(path, $"header should be a JSON object, found {doc.RootElement.ValueKind}");
                var tensors = new List<TensorInfo>();
                var byName = new Dictionary<string, (TensorInfo, long)>(StringComparer.Ordinal);
                var ranges = new List<(long Begin, long End, string Name)>();
                IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
                bool sawMetadata = false;
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    if (prop.Name == "__metadata__")
                    {
                        if (sawMetadata) throw new CheckpointFormatException(path, "'__metadata__' appears twice in the header");
                        sawMetadata = true;
                        metadata = ReadMetadata(path, prop.Value);
                        continue;
                    }
                    if (byName.ContainsKey(prop.Name))
                        throw new CheckpointFormatException(path, "the name appears twice in the header", prop.Name);
                    var (info, begin, end) = ReadEntry(path, prop.Name, prop.Value, dataLength);
                    tensors.Add(info);
                    byName.Add(prop.Name, (info, dataStart + begin));
                    ranges.Add((begin, end, prop.Name));
                }
                CheckNoOverlap(path, ranges);
                return new SafeTensorsFile(path, storage, tensors, byName, metadata);
            }
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadMetadata(string path, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"'__metadata__' should be an object of strings, found {e.ValueKind}");
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException(path, $"'__metadata__' value of '{p.Name}' should be a string, found {p.Value.ValueKind}");
            d[p.Name] = p.Value.GetString()!;
        }
        return d;
    }

    private static (TensorInfo Info, long Begin, long End) ReadEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, $"entry should be an object with dtype, shape and data_offsets, found {e.ValueKind}", name);
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new CheckpointFormatException(path, "missing or non-string 'dtype'", name);
        DType dtype = ParseDType(path, name, dt.GetString()!);

        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new CheckpointFormatException(path, "missing or non-array 'shape'", name);
        var shape = new int[sh.GetArrayLength()];
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0)
                throw new CheckpointFormatException(path, $"shape entry {d.GetRawText()} is not a non-negative 32-bit integer", name);
            shape[k++] = v;
        }

        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new CheckpointFormatException(path, "'data_offsets' should be [begin, end]", name);
        long begin = ReadOffset(path, name, off[0]), end = ReadOffset(path, name, off[1]);
        if (begin > end)
            throw new CheckpointFormatException(path, $"data_offsets [{begin}, {end}] end before they begin", name);
        if (end > dataLength)
            throw new CheckpointFormatException(path, $"data_offsets [{begin}, {end}] are out of range: the data section holds {dataLength} bytes", name);

        var info = new TensorInfo(name, dtype, shape);
        long expected;
        try { expected = info.ByteLength; }
        catch (OverflowException) { throw new CheckpointFormatException(path, $"shape {ShapeException.Format(shape)} is too large", name); }
        if (end - begin != expected)
            throw new CheckpointFormatException(path, $"data_offsets [{begin}, {end}] span {end - begin} bytes but {dtype}{ShapeException.Format(shape)} needs {expected} (size does not match shape × dtype)", name);
        return (info, begin, end);
    }

    private static long ReadOffset(string path, string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) && v >= 0
            ? v
            : throw new CheckpointFormatException(path, $"data offset {e.GetRawText()} is not a non-negative integer", name);

    private static void CheckNoOverlap(string path, List<(long Begin, long End, string Name)> ranges)
    {
        ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        (long Begin, long End, string Name)? prev = null;
        foreach (var r in ranges)
        {
            if (r.Begin == r.End) continue; // empty tensors occupy no bytes
            if (prev is { } p && r.Begin < p.End)
                throw new CheckpointFormatException(path, $"bytes [{r.Begin}, {r.End}) overlap tensor '{p.Name}' [{p.Begin}, {p.End})", r.Name);
            prev = r;
        }
    }

    /// <summary>The safetensors dtype string of a <see cref="DType"/> (F32, F16, BF16, F64, I32, I64, U8).</summary>
    public static string DTypeName(DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.F64 => "F64",
        DType.I32 => "I32",
        DType.I64 => "I64",
        DType.U8 => "U8",
        _ => throw new NotSupportedException($"safetensors cannot store {t}"),
    };

    private static DType ParseDType(string path, string name, string s) => s switch
    {
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        "F64" => DType.F64,
        "I32" => DType.I32,
        "I64" => DType.I64,
        "U8" => DType.U8,
        "BOOL" or "I8" or "I16" or "U16" or "U32" or "U64" or "F8_E4M3" or "F8_E5M2" or "F8_E8M0" or "F4" or "F6_E2M3" or "F6_E3M2"
            => throw new CheckpointFormatException(path, $"dtype '{s}' is not supported (supported: F32, F16, BF16, F64, I32, I64, U8)", name),
        _ => throw new CheckpointFormatException(path, $"unknown dtype '{s}'", name),
    };
}
