using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace EdgeTune.Security;

/// <summary>
/// The fixed 104-byte header of an ETENC1 file (all integers little-endian):
/// <code>
///  0  6  magic "ETENC1"
///  6  2  version (1)
///  8  1  KDF (0 raw key, 1 Argon2id, 2 PBKDF2-SHA256)
///  9  3  reserved, zero
/// 12  4  KDF iterations / passes
/// 16  4  KDF memory in KiB (Argon2id)
/// 20  4  KDF parallelism (Argon2id)
/// 24 16  KDF salt (zero for a raw key)
/// 40 16  random file id
/// 56  4  random nonce prefix
/// 60  4  plaintext chunk size
/// 64  8  plaintext length
/// 72 32  HMAC-SHA256 over bytes 0..72 and the UTF-8 logical name, with the file's header key
/// </code>
/// </summary>
public sealed record EncryptedFileInfo(
    int Version, KdfParameters Kdf, int ChunkSize, long PlaintextLength, long ChunkCount, long EncryptedLength);

internal sealed class EncryptedFileHeader
{
    public const int Size = 104;
    public const int MacOffset = 72;
    public const int TagBytes = 16;
    public const ushort Version = 1;
    public const int MinChunkSize = 4096;
    public const int MaxChunkSize = 16 << 20;
    public static ReadOnlySpan<byte> Magic => "ETENC1"u8;

    public required KdfParameters Kdf { get; init; }
    public required byte[] Salt { get; init; }
    public required byte[] FileId { get; init; }
    public required byte[] NoncePrefix { get; init; }
    public required int ChunkSize { get; init; }
    public required long PlaintextLength { get; set; }
    public byte[] Mac { get; set; } = new byte[32];

    /// <summary>At least one chunk: an empty file has a single empty final chunk, so it still carries a tag.</summary>
    public long ChunkCount => PlaintextLength == 0 ? 1 : (PlaintextLength + ChunkSize - 1) / ChunkSize;

    public long EncryptedLength => Size + PlaintextLength + ChunkCount * TagBytes;

    public long ChunkPlainLength(long index) =>
        index < ChunkCount - 1 ? ChunkSize : PlaintextLength - (ChunkCount - 1) * (long)ChunkSize;

    public long ChunkOffset(long index) => Size + index * (ChunkSize + (long)TagBytes);

    public EncryptedFileInfo ToInfo() => new(Version, Kdf, ChunkSize, PlaintextLength, ChunkCount, EncryptedLength);

    public void WriteTo(Span<byte> b)
    {
        b[..Size].Clear();
        Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], Version);
        b[8] = (byte)Kdf.Algorithm;
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], Kdf.Iterations);
        BinaryPrimitives.WriteInt32LittleEndian(b[16..], Kdf.MemoryKiB);
        BinaryPrimitives.WriteInt32LittleEndian(b[20..], Kdf.Parallelism);
        Salt.CopyTo(b[24..]);
        FileId.CopyTo(b[40..]);
        NoncePrefix.CopyTo(b[56..]);
        BinaryPrimitives.WriteInt32LittleEndian(b[60..], ChunkSize);
        BinaryPrimitives.WriteInt64LittleEndian(b[64..], PlaintextLength);
        Mac.CopyTo(b[MacOffset..]);
    }

    /// <summary>Parses and range-checks a header; authentication is separate (<see cref="Verify"/>).</summary>
    public static EncryptedFileHeader Parse(ReadOnlySpan<byte> b, string path)
    {
        if (b.Length < Size || !b.StartsWith(Magic))
            throw new EncryptedFileException(path, b.Length < Magic.Length || !b[..Magic.Length].SequenceEqual(Magic)
                ? "not an EdgeTune encrypted file (no ETENC1 magic)"
                : $"file is {b.Length} bytes, too short for the {Size}-byte ETENC1 header");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(b[6..]);
        if (version != Version)
            throw new EncryptedFileException(path, $"ETENC1 version {version} is not supported (this build reads version {Version})");
        if (b[9] != 0 || b[10] != 0 || b[11] != 0)
            throw new EncryptedFileException(path, "reserved header bytes are not zero (tampered header)");
        var kdf = new KdfParameters((KdfAlgorithm)b[8], BinaryPrimitives.ReadInt32LittleEndian(b[12..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[16..]), BinaryPrimitives.ReadInt32LittleEndian(b[20..]));
        if (kdf.Problem() is { } problem)
            throw new EncryptedFileException(path, $"bad KDF parameters in the header: {problem}");
        int chunk = BinaryPrimitives.ReadInt32LittleEndian(b[60..]);
        if (chunk < MinChunkSize || chunk > MaxChunkSize)
            throw new EncryptedFileException(path, $"chunk size {chunk} out of range [{MinChunkSize}, {MaxChunkSize}]");
        long length = BinaryPrimitives.ReadInt64LittleEndian(b[64..]);
        if (length < 0 || length > long.MaxValue / 2)
            throw new EncryptedFileException(path, $"plaintext length {length} is out of range");
        return new EncryptedFileHeader
        {
            Kdf = kdf,
            Salt = b.Slice(24, 16).ToArray(),
            FileId = b.Slice(40, 16).ToArray(),
            NoncePrefix = b.Slice(56, 4).ToArray(),
            ChunkSize = chunk,
            PlaintextLength = length,
            Mac = b.Slice(MacOffset, 32).ToArray(),
        };
    }

    /// <summary>Per-file keys: HKDF-SHA256 of the master key with the file id as salt.</summary>
    public (byte[] ChunkKey, byte[] HeaderKey) DeriveKeys(byte[] master)
    {
        byte[] chunkKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 32, FileId, "EdgeTune ETENC1 chunk key"u8.ToArray());
        byte[] headerKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 32, FileId, "EdgeTune ETENC1 header key"u8.ToArray());
        return (chunkKey, headerKey);
    }

    public byte[] ComputeMac(byte[] headerKey, byte[] logicalName)
    {
        Span<byte> b = stackalloc byte[Size];
        WriteTo(b);
        using var h = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, headerKey);
        h.AppendData(b[..MacOffset]);
        h.AppendData(logicalName);
        return h.GetHashAndReset();
    }

    public bool Verify(byte[] headerKey, byte[] logicalName) =>
        CryptographicOperations.FixedTimeEquals(ComputeMac(headerKey, logicalName), Mac);

    /// <summary>Nonce of chunk <paramref name="index"/>: the 4-byte file prefix then the 8-byte index.</summary>
    public void Nonce(long index, Span<byte> nonce)
    {
        NoncePrefix.CopyTo(nonce);
        BinaryPrimitives.WriteInt64LittleEndian(nonce[4..], index);
    }

    /// <summary>
    /// Associated data of chunk <paramref name="index"/>: magic, file id, index, final flag, logical name.
    /// A chunk thus authenticates only at its own place, in its own file, under its own name, and the final
    /// flag makes a file cut at a chunk boundary fail.
    /// </summary>
    public byte[] AssociatedData(long index, bool final, byte[] logicalName)
    {
        var ad = new byte[6 + 16 + 8 + 1 + logicalName.Length];
        Magic.CopyTo(ad);
        FileId.CopyTo(ad, 6);
        BinaryPrimitives.WriteInt64LittleEndian(ad.AsSpan(22), index);
        ad[30] = final ? (byte)1 : (byte)0;
        logicalName.CopyTo(ad, 31);
        return ad;
    }

    /// <summary>Logical names are compared as UTF-8 with '/' separators, so a run folder moves between systems.</summary>
    public static byte[] NameBytes(string logicalName)
    {
        ArgumentNullException.ThrowIfNull(logicalName);
        return Encoding.UTF8.GetBytes(logicalName.Replace('\\', '/'));
    }
}
