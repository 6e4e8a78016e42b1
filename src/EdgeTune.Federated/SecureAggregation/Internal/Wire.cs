using System.Buffers.Binary;
using System.Text;

namespace EdgeTune.Federated.SecureAggregation.Internal;

/// <summary>Little-endian writer for secure-aggregation messages.</summary>
internal sealed class WireWriter
{
    private readonly MemoryStream _s = new();

    public WireWriter(byte kind)
    {
        _s.Write(Wire.Magic);
        _s.WriteByte(Wire.Version);
        _s.WriteByte(kind);
    }

    public void Int(int v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, v); _s.Write(b); }
    public void ULong(ulong v) { Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); _s.Write(b); }
    public void Bytes(ReadOnlySpan<byte> v) { Int(v.Length); _s.Write(v); }
    public void String(string v) => Bytes(Encoding.UTF8.GetBytes(v));
    public void ULongs(ReadOnlySpan<ulong> v) { Int(v.Length); foreach (var x in v) ULong(x); }
    public void Strings(IReadOnlyCollection<string> v) { Int(v.Count); foreach (var x in v) String(x); }
    public byte[] ToArray() => _s.ToArray();
}

/// <summary>Bounds-checked reader: every length is checked against what is left before reading, so a hostile
/// payload raises <see cref="FormatException"/> and never reads past the buffer.</summary>
internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _b;
    private readonly string _what;
    private int _p;

    public WireReader(ReadOnlySpan<byte> bytes, byte kind, string what)
    {
        _b = bytes; _what = what; _p = 0;
        if (bytes.Length < 6 || !bytes[..4].SequenceEqual(Wire.Magic))
            throw new FormatException($"{what}: not a secure-aggregation message (bad magic or {bytes.Length} bytes)");
        if (bytes[4] != Wire.Version) throw new FormatException($"{what}: format version {bytes[4]}; {Wire.Version} expected");
        if (bytes[5] != kind) throw new FormatException($"{what}: message kind {bytes[5]}; {kind} expected");
        _p = 6;
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _b.Length - _p) throw new FormatException($"{_what}: truncated at byte {_p} (needs {n} more, {_b.Length - _p} left)");
        var s = _b.Slice(_p, n); _p += n; return s;
    }

    public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
    public ulong ULong() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public int Count(int minBytesPerItem)
    {
        int n = Int();
        if (n < 0 || (long)n * minBytesPerItem > _b.Length - _p) throw new FormatException($"{_what}: count {n} at byte {_p - 4} exceeds the payload");
        return n;
    }

    public byte[] Bytes() => Take(Count(1)).ToArray();

    public string String()
    {
        int n = Count(1);
        if (n > Wire.MaxIdBytes) throw new FormatException($"{_what}: a string of {n} bytes; at most {Wire.MaxIdBytes} expected");
        try { return new UTF8Encoding(false, true).GetString(Take(n)); }
        catch (ArgumentException) { throw new FormatException($"{_what}: a string is not valid UTF-8"); }
    }

    public ulong[] ULongs()
    {
        int n = Count(8);
        var r = new ulong[n];
        for (int i = 0; i < n; i++) r[i] = ULong();
        return r;
    }

    public string[] Strings()
    {
        int n = Count(4);
        var r = new string[n];
        for (int i = 0; i < n; i++) r[i] = String();
        return r;
    }

    public void End()
    {
        if (_p != _b.Length) throw new FormatException($"{_what}: {_b.Length - _p} trailing bytes");
    }
}

internal static class Wire
{
    public static ReadOnlySpan<byte> Magic => "ESAG"u8;
    public const byte Version = 1;
    public const int MaxIdBytes = 256;
}
