using System.Buffers.Binary;
using System.Text;
using EdgeTune.Formats.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// Writes GGUF v3 files (little-endian): header, metadata in the order given, tensor infos
/// (dims in GGML order, ne[0] innermost, so a row-major [out, in] weight is written as ne = [in, out]),
/// padding to the alignment (omitted when there are no tensors), then each tensor's bytes at an aligned offset, zero-padded to the
/// alignment. The alignment is <c>general.alignment</c> when the metadata has it (a UInt32 power
/// of two), else 32. The file appears atomically (temporary sibling, flush, rename).
/// </summary>
public static class GgufWriter
{
    public const uint Version = 3;

    /// <summary>Writes tensors named by <see cref="Tensor.Name"/>.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<Tensor> tensors) =>
        Write(path, metadata, tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, t)));

    /// <summary>Writes metadata and named tensors (dtypes F32, F16, BF16, F64, I32, I64, Q8_0, Q4_0).</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, GgufValue>> metadata, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var kvs = metadata.ToList();
        var list = tensors.ToList();
        uint alignment = ResolveAlignment(path, kvs);

        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (k, v) in kvs)
        {
            ArgumentNullException.ThrowIfNull(v, k);
            if (!keys.Add(k)) throw new CheckpointFormatException(path, $"metadata key '{k}' is given twice");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var types = new GgmlType[list.Count];
        var offsets = new long[list.Count];
        long offset = 0;
        for (int i = 0; i < list.Count; i++)
        {
            var (name, t) = list[i];
            if (string.IsNullOrEmpty(name)) throw new CheckpointFormatException(path, $"cannot write a tensor without a name ({t})");
            if (!names.Add(name)) throw new CheckpointFormatException(path, "the tensor name is given twice", name);
            if (t.Rank > GgufFile.MaxDims) throw new CheckpointFormatException(path, $"rank {t.Rank} exceeds GGML's {GgufFile.MaxDims} dimensions", name);
            if (t.DType.IsBlockQuantized() && (t.Rank == 0 || t.Dim(-1) % t.DType.BlockSize() != 0))
                throw new CheckpointFormatException(path, $"{t.DType} rows must be a multiple of {t.DType.BlockSize()} elements, shape is {t.ShapeString}", name);
            try { types[i] = t.DType.ToGgmlType(); }
            catch (NotSupportedException e) { throw new CheckpointFormatException(path, e.Message, name); }
            offsets[i] = offset;
            offset += Align(t.ByteLength, alignment);
        }

        AtomicFile.Write(path, fs =>
        {
            var w = new LeWriter(fs);
            w.U32(GgufFile.Magic);
            w.U32(Version);
            w.U64((ulong)list.Count);
            w.U64((ulong)kvs.Count);
            foreach (var (k, v) in kvs)
            {
                w.String(k);
                w.U32((uint)v.Type);
                WriteValue(w, v);
            }
            for (int i = 0; i < list.Count; i++)
            {
                var (name, t) = list[i];
                w.String(name);
                w.U32((uint)t.Rank);
                foreach (long d in GgufTensorInfo.NeFromShape(t.Shape)) w.U64((ulong)d);
                w.U32((uint)types[i]);
                w.U64((ulong)offsets[i]);
            }
            if (list.Count > 0) AtomicFile.WritePadding(fs, Align(fs.Position, alignment) - fs.Position); // a tensor-less file ends after the infos, like llama.cpp's vocab files
            for (int i = 0; i < list.Count; i++)
            {
                var t = list[i].Value;
                WriteData(fs, t);
                AtomicFile.WritePadding(fs, Align(t.ByteLength, alignment) - t.ByteLength);
            }
        });
    }

    private static unsafe void WriteData(Stream s, Tensor t) => AtomicFile.WriteBytes(s, (byte*)t.Pointer, t.ByteLength);

    private static long Align(long x, uint a) => (x + a - 1) / a * a;

    private static uint ResolveAlignment(string path, List<KeyValuePair<string, GgufValue>> kvs)
    {
        foreach (var (k, v) in kvs)
        {
            if (k != GgufFile.AlignmentKey) continue;
            if (v.Type != GgufValueType.UInt32)
                throw new CheckpointFormatException(path, $"'{GgufFile.AlignmentKey}' must be a UInt32, got {v.Describe()}");
            uint a = (uint)v.Value;
            if (a == 0 || (a & (a - 1)) != 0)
                throw new CheckpointFormatException(path, $"'{GgufFile.AlignmentKey}' = {a} is not a power of two");
            return a;
        }
        return GgufFile.DefaultAlignment;
    }

    private static void WriteValue(LeWriter w, GgufValue v)
    {
        switch (v.Value)
        {
            case byte x: w.U8(x); break;
            case sbyte x: w.U8((byte)x); break;
            case ushort x: w.U16(x); break;
            case short x: w.U16((ushort)x); break;
            case uint x: w.U32(x); break;
            case int x: w.U32((uint)x); break;
            case float x: w.U32(BitConverter.SingleToUInt32Bits(x)); break;
            case bool x: w.U8(x ? (byte)1 : (byte)0); break;
            case string x: w.String(x); break;
            case ulong x: w.U64(x); break;
            case long x: w.U64((ulong)x); break;
            case double x: w.U64(BitConverter.DoubleToUInt64Bits(x)); break;
            case Array a:
                w.U32((uint)v.ElementType);
                w.U64((ulong)a.Length);
                if (v.ElementType == GgufValueType.Array)
                    foreach (GgufValue inner in a) WriteValue(w, inner);
                else
                    foreach (object item in a) WriteValue(w, Box(item));
                break;
            default: throw new NotSupportedException($"GGUF: cannot write a value of {v.Value.GetType().Name}");
        }
    }

    private static GgufValue Box(object item) => item switch
    {
        byte x => GgufValue.UInt8(x), sbyte x => GgufValue.Int8(x), ushort x => GgufValue.UInt16(x), short x => GgufValue.Int16(x),
        uint x => GgufValue.UInt32(x), int x => GgufValue.Int32(x), float x => GgufValue.Float32(x), bool x => GgufValue.Bool(x),
        string x => GgufValue.String(x), ulong x => GgufValue.UInt64(x), long x => GgufValue.Int64(x), double x => GgufValue.Float64(x),
        _ => throw new NotSupportedException($"GGUF: cannot write an array element of {item.GetType().Name}"),
    };

    /// <summary>Little-endian primitive writes onto a stream.</summary>
    private sealed class LeWriter(Stream s)
    {
        private readonly byte[] _b = new byte[8];
        public void U8(byte v) => s.WriteByte(v);
        public void U16(ushort v) { BinaryPrimitives.WriteUInt16LittleEndian(_b, v); s.Write(_b, 0, 2); }
        public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_b, v); s.Write(_b, 0, 4); }
        public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_b, v); s.Write(_b, 0, 8); }
        public void String(string v)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(v);
            U64((ulong)bytes.Length);
            s.Write(bytes);
        }
    }
}
