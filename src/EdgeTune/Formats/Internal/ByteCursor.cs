using System.Buffers.Binary;
using System.Text;

namespace EdgeTune.Formats.Internal;

/// <summary>
/// Reads little-endian values from a byte range with a bounds check before every read, so a
/// malformed length or count raises a <see cref="CheckpointFormatException"/> instead of reading
/// outside the range or allocating more than the file could hold.
/// </summary>
internal sealed unsafe class ByteCursor(byte* start, long length, string file)
{
    public long Position { get; private set; }
    public long Length => length;
    public long Remaining => length - Position;
    public string File => file;

    /// <summary>Throws unless <paramref name="bytes"/> more bytes remain.</summary>
    public void Need(long bytes, string what)
    {
        if (bytes < 0 || bytes > Remaining)
            throw new CheckpointFormatException(file, $"truncated: {what} needs {(bytes < 0 ? "a negative number of" : bytes.ToString())} bytes at offset {Position}, but only {Remaining} remain");
    }

    private ReadOnlySpan<byte> Take(int n, string what)
    {
        Need(n, what);
        var s = new ReadOnlySpan<byte>(start + Position, n);
        Position += n;
        return s;
    }

    public byte U8(string what) => Take(1, what)[0];
    public sbyte I8(string what) => (sbyte)Take(1, what)[0];
    public ushort U16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public short I16(string what) => BinaryPrimitives.ReadInt16LittleEndian(Take(2, what));
    public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public int I32(string what) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, what));
    public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public long I64(string what) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, what));
    public float F32(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double F64(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>Copies <paramref name="dst"/>.Length bytes (for primitive arrays on a little-endian host).</summary>
    public void Bytes(Span<byte> dst, string what)
    {
        Need(dst.Length, what);
        new ReadOnlySpan<byte>(start + Position, dst.Length).CopyTo(dst);
        Position += dst.Length;
    }

    /// <summary>A GGUF string: u64 byte length, then UTF-8 bytes (checked against the remaining bytes first).</summary>
    public string String(string what)
    {
        ulong n = U64(what + " length");
        if (n > (ulong)Remaining)
            throw new CheckpointFormatException(file, $"{what}: string length {n} at offset {Position - 8} goes beyond the end of the file ({Remaining} bytes remain)");
        if (n > int.MaxValue)
            throw new CheckpointFormatException(file, $"{what}: string length {n} is too large");
        return Encoding.UTF8.GetString(Take((int)n, what));
    }

    public void Seek(long position)
    {
        if (position < 0 || position > length)
            throw new CheckpointFormatException(file, $"offset {position} is outside the file ({length} bytes)");
        Position = position;
    }
}
