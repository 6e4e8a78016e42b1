using System.Buffers.Binary;

namespace EdgeTune.Federated.UpdateCompression.Internal;

/// <summary>
/// The 16-byte header every encoded update starts with:
/// magic "ETUC" (4) · version (1) · codec id (1) · reserved 0 (2) · value count (int64 LE).
/// </summary>
internal static class CodecHeader
{
    public const int Size = 16;
    public const byte Version = 1;
    public const byte Float32Id = 1, Int8Id = 2, TopKId = 3;
    private static ReadOnlySpan<byte> Magic => "ETUC"u8;

    public static void Write(Span<byte> dst, byte codec, long length)
    {
        Magic.CopyTo(dst);
        dst[4] = Version;
        dst[5] = codec;
        dst[6] = 0; dst[7] = 0;
        BinaryPrimitives.WriteInt64LittleEndian(dst[8..], length);
    }

    /// <summary>Reads and checks the header; returns the codec id and the value count.</summary>
    public static (byte Codec, int Length) Read(ReadOnlySpan<byte> src)
    {
        if (src.Length < Size) throw new FormatException($"update payload: {src.Length} bytes, shorter than the {Size}-byte header");
        if (!src[..4].SequenceEqual(Magic)) throw new FormatException("update payload: bad magic (not an EdgeTune update)");
        if (src[4] != Version) throw new FormatException($"update payload: format version {src[4]}; {Version} expected");
        if (src[6] != 0 || src[7] != 0) throw new FormatException("update payload: reserved header bytes are not zero");
        long n = BinaryPrimitives.ReadInt64LittleEndian(src[8..]);
        if (n < 0 || n > Array.MaxLength) throw new FormatException($"update payload: value count {n} is out of range");
        return (src[5], (int)n);
    }
}
