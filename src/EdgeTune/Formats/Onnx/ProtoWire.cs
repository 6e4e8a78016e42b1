namespace EdgeTune.Formats.Onnx;

/// <summary>
/// The protobuf wire format, read just far enough to walk ONNX messages by field number (no generated
/// classes, no protobuf dependency in the core library). Every length is checked against the bytes
/// left, so a malformed file raises <see cref="CheckpointFormatException"/> instead of reading past the end.
/// </summary>
internal ref struct ProtoWire
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private readonly ReadOnlySpan<byte> _data;
    private readonly int _base;
    private readonly string _file;
    private int _pos;

    /// <param name="data">The message's bytes.</param>
    /// <param name="baseOffset">Where <paramref name="data"/> starts in the file (offsets of sub-messages are absolute).</param>
    /// <param name="file">The file named in errors.</param>
    public ProtoWire(ReadOnlySpan<byte> data, int baseOffset, string file)
    {
        _data = data;
        _base = baseOffset;
        _file = file;
        _pos = 0;
    }

    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>Reads the next key; false at the end of the message.</summary>
    public bool Next(out int field, out int wireType)
    {
        if (AtEnd) { field = 0; wireType = 0; return false; }
        ulong key = ReadVarint();
        field = (int)(key >> 3);
        wireType = (int)(key & 7);
        if (field <= 0) throw Bad($"field number {field}");
        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw Bad("truncated varint");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw Bad("varint longer than 10 bytes");
    }

    /// <summary>A length-delimited payload: its bytes and their absolute offset in the file.</summary>
    public ReadOnlySpan<byte> ReadBytes(out int absoluteOffset)
    {
        ulong len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos)) throw Bad($"length {len} runs past the end of its message");
        absoluteOffset = _base + _pos;
        var s = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes(out _));

    public uint ReadFixed32()
    {
        if (_data.Length - _pos < 4) throw Bad("truncated fixed32");
        uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_data.Slice(_pos, 4));
        _pos += 4;
        return v;
    }

    /// <summary>Skips a value of <paramref name="wireType"/> (fields this reader does not need).</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadBytes(out _); break;
            case Fixed32: Advance(4); break;
            default: throw Bad($"unsupported wire type {wireType}");
        }
    }

    private void Advance(int n)
    {
        if (_data.Length - _pos < n) throw Bad("truncated fixed-width value");
        _pos += n;
    }

    private readonly CheckpointFormatException Bad(string what) =>
        new(_file, $"malformed protobuf at offset {_base + _pos}: {what}");
}
