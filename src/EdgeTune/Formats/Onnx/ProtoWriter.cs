using System.Buffers.Binary;
using System.Text;

namespace EdgeTune.Formats.Onnx;

/// <summary>
/// Writes protobuf wire format into a growable buffer: the four encodings ONNX messages use (varint, fixed32,
/// fixed64, length-delimited). The reading side (<see cref="ProtoWire"/>) keeps the core library free of a protobuf
/// dependency so that it stays trimmable/AOT-friendly on phones; the writer follows the same choice, and it is small
/// because ONNX export never needs generated classes: each message is written once, in field order, by the exporter.
/// Sub-messages are written into their own writer and appended with <see cref="Message"/> (their length must be
/// known before they are embedded).
/// </summary>
internal sealed class ProtoWriter
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public int Length => _length;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    private Span<byte> Grow(int n)
    {
        if (_length + n > _buffer.Length)
        {
            long size = Math.Max((long)_buffer.Length * 2, (long)_length + n);
            if (size > Array.MaxLength) throw new InvalidOperationException($"ProtoWriter: a message of {size} bytes is beyond what one buffer holds; put large tensors in external data");
            Array.Resize(ref _buffer, (int)size);
        }
        var s = _buffer.AsSpan(_length, n);
        _length += n;
        return s;
    }

    private void RawVarint(ulong v)
    {
        while (v >= 0x80)
        {
            Grow(1)[0] = (byte)(v | 0x80);
            v >>= 7;
        }
        Grow(1)[0] = (byte)v;
    }

    private void Key(int field, int wireType) => RawVarint(((ulong)field << 3) | (uint)wireType);

    /// <summary>An int32/int64/enum/bool field (negative values take ten bytes, as protobuf's int64 does).</summary>
    public void Int(int field, long value)
    {
        Key(field, ProtoWire.Varint);
        RawVarint(unchecked((ulong)value));
    }

    public void Float(int field, float value)
    {
        Key(field, ProtoWire.Fixed32);
        BinaryPrimitives.WriteSingleLittleEndian(Grow(4), value);
    }

    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, ProtoWire.LengthDelimited);
        RawVarint((ulong)value.Length);
        value.CopyTo(Grow(value.Length));
    }

    public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public void Message(int field, ProtoWriter message) => Bytes(field, message.Written);

    /// <summary>A packed repeated int64 field.</summary>
    public void PackedInts(int field, ReadOnlySpan<long> values)
    {
        var inner = new ProtoWriter();
        foreach (long v in values) inner.RawVarint(unchecked((ulong)v));
        Bytes(field, inner.Written);
    }

    /// <summary>A packed repeated float field.</summary>
    public void PackedFloats(int field, ReadOnlySpan<float> values)
    {
        Key(field, ProtoWire.LengthDelimited);
        RawVarint((ulong)values.Length * 4);
        var dst = Grow(values.Length * 4);
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], values[i]);
    }
}
