using System.Buffers.Binary;
using System.Security.Cryptography;

namespace EdgeTune.Federated.SecureAggregation.Internal;

/// <summary>
/// The mask generator: AES-256 in counter mode keyed by a 32-byte seed (block i encrypts the
/// 128-bit little-endian counter i), read as little-endian 64-bit words. Deterministic: the same
/// seed gives the same stream on every machine.
/// </summary>
internal static class MaskPrg
{
    public const int SeedBytes = 32;

    /// <summary>dst[i] += sign·PRG(seed)[i] (mod 2^64).</summary>
    public static void AddTo(Span<ulong> dst, ReadOnlySpan<byte> seed, bool subtract)
    {
        if (seed.Length != SeedBytes) throw new ArgumentException($"MaskPrg: seed has {seed.Length} bytes; {SeedBytes} expected");
        using var aes = Aes.Create();
        aes.Key = seed.ToArray();
        const int BlocksPerBatch = 256;
        var counters = new byte[BlocksPerBatch * 16];
        var stream = new byte[BlocksPerBatch * 16];
        ulong block = 0;
        for (int start = 0; start < dst.Length; start += BlocksPerBatch * 2)
        {
            int words = Math.Min(BlocksPerBatch * 2, dst.Length - start);
            int blocks = (words + 1) / 2;
            for (int b = 0; b < blocks; b++, block++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(counters.AsSpan(b * 16), block);
                BinaryPrimitives.WriteUInt64LittleEndian(counters.AsSpan(b * 16 + 8), 0);
            }
            aes.EncryptEcb(counters.AsSpan(0, blocks * 16), stream, PaddingMode.None);
            for (int w = 0; w < words; w++)
            {
                ulong r = BinaryPrimitives.ReadUInt64LittleEndian(stream.AsSpan(w * 8));
                dst[start + w] = subtract ? dst[start + w] - r : dst[start + w] + r;
            }
        }
    }
}
