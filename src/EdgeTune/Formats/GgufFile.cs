using EdgeTune.Formats.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// A memory-mapped GGUF file (versions 2 and 3, little-endian; both use 64-bit counts and lengths, version 1's
/// 32-bit ones are refused by name): magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the metadata key/values, the tensor infos, then the data
/// section at the next multiple of <c>general.alignment</c> (default 32). Tensors are read-only
/// views into the mapping.
/// </summary>
/// <remarks>
/// Every length and count is checked against the bytes that remain before anything is allocated,
/// so a corrupt file raises <see cref="CheckpointFormatException"/> (naming the file and the
/// key or tensor) rather than allocating gigabytes. Tensors of GGML types EdgeTune cannot hold
/// (Q4_K ...) are listed in <see cref="TensorInfos"/> but not in <see cref="Tensors"/>;
/// <see cref="GetTensor"/> refuses them by name.
/// </remarks>
public sealed class GgufFile : ICheckpointReader
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian u32
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";
    /// <summary>GGML_MAX_DIMS.</summary>
    public const int MaxDims = 4;
    private const int MaxArrayNesting = 8;

    private readonly TensorStorage _storage;
    private readonly Dictionary<string, GgufTensorInfo> _byName;
    private readonly List<TensorInfo> _tensors;

    private GgufFile(string path, TensorStorage storage, uint version, Dictionary<string, GgufValue> metadata,
        List<string> keyOrder, List<GgufTensorInfo> infos, uint alignment, long dataOffset)
    {
        Source = path;
        _storage = storage;
        Version = version;
        Metadata = metadata;
        MetadataKeys = keyOrder;
        TensorInfos = infos;
        Alignment = alignment;
        DataOffset = dataOffset;
        _byName = infos.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _tensors = infos.Where(t => t.DType is not null).Select(t => new TensorInfo(t.Name, t.DType!.Value, t.Shape)).ToList();
    }

    public string Source { get; }
    public uint Version { get; }
    public uint Alignment { get; }

    /// <summary>File offset of the data section.</summary>
    public long DataOffset { get; }

    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>Metadata keys in file order.</summary>
    public IReadOnlyList<string> MetadataKeys { get; }

    /// <summary>Every tensor the file describes, in file order, with GGML types and dims.</summary>
    public IReadOnlyList<GgufTensorInfo> TensorInfos { get; }

    /// <summary>The q/k row pairing for this file's architecture: interleaved for llama (llama.cpp's
    /// converter permutes it), half-split for NEOX-rope architectures such as qwen2 and phi3
    /// (see <see cref="GgufLlama.RopeLayoutOf"/>).</summary>
    public RopeStyle RopeLayout => GgufLlama.RopeLayoutOf(Architecture);

    /// <summary>The tensors EdgeTune can hold (F32, F16, BF16, F64, I32, I64, Q8_0, Q4_0), row-major shapes.</summary>
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary><c>general.architecture</c>, or null.</summary>
    public string? Architecture => Metadata.TryGetValue("general.architecture", out var v) && v.Type == GgufValueType.String ? v.AsString() : null;

    public bool Contains(string name) => _byName.ContainsKey(name);

    public GgufValue GetMetadata(string key) =>
        Metadata.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"{Source}: no metadata key '{key}'");

    /// <summary>An integer metadata value, or null when the key is absent.</summary>
    /// <exception cref="CheckpointFormatException">The value is not an integer or does not fit an int (the message names the key).</exception>
    public int? GetInt32OrNull(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        try { return v.AsInt32(); }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            throw new CheckpointFormatException(Source, $"metadata '{key}': expected an integer that fits an int, found {v.Describe()} {v}", inner: e);
        }
    }

    /// <summary>
    /// A token id key such as <c>tokenizer.ggml.padding_token_id</c>: null when the key is absent or holds -1
    /// (also as the UInt32 0xFFFFFFFF that llama.cpp's converters write for "none").
    /// </summary>
    /// <exception cref="CheckpointFormatException">The value is not an integer, or is another negative or too large value.</exception>
    public int? GetTokenId(string key)
    {
        if (!Metadata.TryGetValue(key, out var v)) return null;
        try { return v.AsTokenId(); }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            throw new CheckpointFormatException(Source, $"metadata '{key}': expected a token id (a non-negative integer, or -1 for none), found {v.Describe()} {v}", inner: e);
        }
    }

    public Tensor GetTensor(string name)
    {
        if (!_byName.TryGetValue(name, out var t))
            throw new KeyNotFoundException($"{Source}: no tensor named '{name}' ({TensorInfos.Count} tensors in the file)");
        DType dt = t.DType ?? throw new NotSupportedException($"{Source}: tensor '{name}' has GGML type {t.Type}, which EdgeTune cannot load (supported: F32, F16, BF16, Q8_0, Q4_0, F64, I32, I64)");
        return Tensor.View(_storage, DataOffset + t.Offset, dt, t.Shape, name);
    }

    public void Dispose() => _storage.Dispose();

    /// <summary>Maps and parses a GGUF file.</summary>
    public static unsafe GgufFile Open(string path)
    {
        var storage = TensorStorage.MapFile(path);
        try
        {
            var c = new ByteCursor(storage.Pointer, storage.ByteLength, path);
            if (storage.ByteLength < 4)
                throw new CheckpointFormatException(path, $"file is {storage.ByteLength} bytes, too short for the GGUF magic");
            uint magic = c.U32("magic");
            if (magic != Magic)
                throw new CheckpointFormatException(path, $"bad magic: expected 'GGUF', found {Printable(magic)}; not a GGUF file");
            uint version = c.U32("version");
            if (version is not (2 or 3))
                throw new CheckpointFormatException(path, version == 1
                    ? "GGUF version 1 is not supported (versions 2 and 3 are): version 1 files, written before August 2023, use 32-bit counts and lengths; convert the model again with a current llama.cpp"
                    : $"GGUF version {version} is not supported (versions 2 and 3 are){(version > 0xFFFF ? "; a big-endian file?" : "")}");
            ulong tensorCount = c.U64("tensor count");
            ulong kvCount = c.U64("metadata count");
            // Each KV takes at least 8 (key length) + 4 (type) + 1 byte; each tensor info at least 8 + 4 + 4 + 8.
            if (kvCount > (ulong)c.Remaining / 13)
                throw new CheckpointFormatException(path, $"metadata count {kvCount} is impossible: the file has only {c.Remaining} bytes left");
            if (tensorCount > (ulong)c.Remaining / 24)
                throw new CheckpointFormatException(path, $"tensor count {tensorCount} is impossible: the file has only {c.Remaining} bytes left");

            var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
            var order = new List<string>();
            for (ulong i = 0; i < kvCount; i++)
            {
                string key = c.String($"metadata key #{i}");
                var type = (GgufValueType)c.U32($"type of metadata '{key}'");
                var value = ReadValue(c, type, key, 0);
                if (!metadata.TryAdd(key, value))
                    throw new CheckpointFormatException(path, $"metadata key '{key}' appears twice");
                order.Add(key);
            }

            uint alignment = DefaultAlignment;
            if (metadata.TryGetValue(AlignmentKey, out var al))
            {
                if (al.Type != GgufValueType.UInt32)
                    throw new CheckpointFormatException(path, $"'{AlignmentKey}' should be a UInt32, found {al.Describe()}");
                alignment = (uint)al.Value;
                if (alignment == 0 || (alignment & (alignment - 1)) != 0)
                    throw new CheckpointFormatException(path, $"'{AlignmentKey}' = {alignment} is not a power of two");
            }

            var infos = new List<GgufTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (ulong i = 0; i < tensorCount; i++)
            {
                var info = ReadTensorInfo(c, i, alignment);
                if (!seen.Add(info.Name)) throw new CheckpointFormatException(path, "the tensor name appears twice", info.Name);
                infos.Add(info);
            }

            long dataOffset = (c.Position + alignment - 1) / alignment * alignment;
            long dataLength = Math.Max(0, storage.ByteLength - dataOffset);
            CheckRanges(path, infos, dataLength);
            return new GgufFile(path, storage, version, metadata, order, infos, alignment, dataOffset);
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private static GgufTensorInfo ReadTensorInfo(ByteCursor c, ulong index, uint alignment)
    {
        string name = c.String($"name of tensor #{index}");
        uint nDims = c.U32($"dims count of tensor '{name}'");
        if (nDims > MaxDims)
            throw new CheckpointFormatException(c.File, $"has {nDims} dimensions; GGML allows at most {MaxDims}", name);
        var ne = new long[nDims];
        for (int d = 0; d < nDims; d++)
        {
            ulong v = c.U64($"dimension {d} of tensor '{name}'");
            if (v > int.MaxValue)
                throw new CheckpointFormatException(c.File, $"dimension ne[{d}] = {v} is too large", name);
            ne[d] = (long)v;
        }
        uint typeId = c.U32($"type of tensor '{name}'");
        var type = (GgmlType)typeId;
        var layout = GgmlTypeInfo.Layout(type)
            ?? throw new CheckpointFormatException(c.File, $"unknown GGML tensor type id {typeId}", name);
        ulong offset = c.U64($"offset of tensor '{name}'");
        if (offset % alignment != 0)
            throw new CheckpointFormatException(c.File, $"data offset {offset} is not a multiple of the alignment {alignment}", name);
        if (ne.Length > 0 && ne[0] % layout.BlockSize != 0)
            throw new CheckpointFormatException(c.File, $"row length ne[0] = {ne[0]} is not a multiple of the {type} block size {layout.BlockSize}", name);
        long elements = 1;
        foreach (long d in ne)
        {
            if (d != 0 && elements > long.MaxValue / 16 / d)
                throw new CheckpointFormatException(c.File, $"dimensions [{string.Join(", ", ne)}] are too large", name);
            elements *= d;
        }
        long bytes = elements / layout.BlockSize * layout.BlockBytes;
        if (offset > long.MaxValue / 2)
            throw new CheckpointFormatException(c.File, $"data offset {offset} is out of range", name);
        return new GgufTensorInfo(name, type, ne, (long)offset, bytes);
    }

    private static void CheckRanges(string path, List<GgufTensorInfo> infos, long dataLength)
    {
        foreach (var t in infos)
            if (t.Offset + t.ByteLength > dataLength)
                throw new CheckpointFormatException(path, $"data [{t.Offset}, {t.Offset + t.ByteLength}) is out of range: the data section holds {dataLength} bytes (file truncated?)", t.Name);
        var sorted = infos.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].ByteLength)
                throw new CheckpointFormatException(path, $"data at {sorted[i].Offset} overlaps tensor '{sorted[i - 1].Name}'", sorted[i].Name);
    }

    private static GgufValue ReadValue(ByteCursor c, GgufValueType type, string key, int depth)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return GgufValue.UInt8(c.U8(key));
            case GgufValueType.Int8: return GgufValue.Int8(c.I8(key));
            case GgufValueType.UInt16: return GgufValue.UInt16(c.U16(key));
            case GgufValueType.Int16: return GgufValue.Int16(c.I16(key));
            case GgufValueType.UInt32: return GgufValue.UInt32(c.U32(key));
            case GgufValueType.Int32: return GgufValue.Int32(c.I32(key));
            case GgufValueType.Float32: return GgufValue.Float32(c.F32(key));
            case GgufValueType.Bool: return GgufValue.Bool(c.U8(key) != 0);
            case GgufValueType.String: return GgufValue.String(c.String($"metadata '{key}'"));
            case GgufValueType.UInt64: return GgufValue.UInt64(c.U64(key));
            case GgufValueType.Int64: return GgufValue.Int64(c.I64(key));
            case GgufValueType.Float64: return GgufValue.Float64(c.F64(key));
            case GgufValueType.Array: return ReadArray(c, key, depth);
            default: throw new CheckpointFormatException(c.File, $"metadata '{key}' has unknown value type id {(uint)type}");
        }
    }

    private static GgufValue ReadArray(ByteCursor c, string key, int depth)
    {
        if (depth >= MaxArrayNesting)
            throw new CheckpointFormatException(c.File, $"metadata '{key}': arrays nested deeper than {MaxArrayNesting}");
        var et = (GgufValueType)c.U32($"element type of metadata '{key}'");
        ulong count = c.U64($"length of metadata '{key}'");
        int minSize = et switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new CheckpointFormatException(c.File, $"metadata '{key}': unknown array element type id {(uint)et}"),
        };
        if (count > (ulong)c.Remaining / (ulong)minSize)
            throw new CheckpointFormatException(c.File, $"metadata '{key}': array length {count} of {et} goes beyond the end of the file ({c.Remaining} bytes remain)");
        int n = (int)count;
        switch (et)
        {
            case GgufValueType.UInt8: return GgufValue.Array(Primitive<byte>(c, n, key));
            case GgufValueType.Int8: return GgufValue.Array(Primitive<sbyte>(c, n, key));
            case GgufValueType.UInt16: return GgufValue.Array(Primitive<ushort>(c, n, key));
            case GgufValueType.Int16: return GgufValue.Array(Primitive<short>(c, n, key));
            case GgufValueType.UInt32: return GgufValue.Array(Primitive<uint>(c, n, key));
            case GgufValueType.Int32: return GgufValue.Array(Primitive<int>(c, n, key));
            case GgufValueType.Float32: return GgufValue.Array(Primitive<float>(c, n, key));
            case GgufValueType.UInt64: return GgufValue.Array(Primitive<ulong>(c, n, key));
            case GgufValueType.Int64: return GgufValue.Array(Primitive<long>(c, n, key));
            case GgufValueType.Float64: return GgufValue.Array(Primitive<double>(c, n, key));
            case GgufValueType.Bool:
                var bools = new bool[n];
                for (int i = 0; i < n; i++) bools[i] = c.U8(key) != 0;
                return GgufValue.Array(bools);
            case GgufValueType.String:
                var strings = new string[n];
                for (int i = 0; i < n; i++) strings[i] = c.String($"metadata '{key}'[{i}]");
                return GgufValue.Array(strings);
            default:
                var nested = new GgufValue[n];
                for (int i = 0; i < n; i++) nested[i] = ReadArray(c, $"{key}[{i}]", depth + 1);
                return GgufValue.Array(nested);
        }
    }

    private static T[] Primitive<T>(ByteCursor c, int n, string key) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("GGUF reading needs a little-endian host");
        var a = new T[n];
        c.Bytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), $"metadata '{key}'");
        return a;
    }

    private static string Printable(uint magic)
    {
        Span<char> s = stackalloc char[4];
        for (int i = 0; i < 4; i++)
        {
            byte b = (byte)(magic >> (8 * i));
            s[i] = b is >= 0x20 and < 0x7F ? (char)b : '?';
        }
        return $"'{s}' (0x{magic:X8})";
    }
}
