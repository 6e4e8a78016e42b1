using System.Numerics;
using System.Security.Cryptography;

namespace EdgeTune.Federated.SecureAggregation.Internal;

/// <summary>
/// Shamir t-of-n secret sharing over the prime field GF(p), p = 2^127 − 1 (a Mersenne prime).
/// A byte secret is cut into 15-byte chunks (each &lt; 2^120 &lt; p); every chunk is the constant
/// term of its own random polynomial of degree t − 1, evaluated at x = 1..n. A share is the
/// concatenation of the chunks' y values, 16 bytes little-endian each. Any t shares rebuild the
/// secret by Lagrange interpolation at 0; t − 1 shares reveal nothing about it.
/// </summary>
internal static class Shamir
{
    public static readonly BigInteger Prime = (BigInteger.One << 127) - 1;
    private const int ChunkBytes = 15;
    private const int ElementBytes = 16;

    public static int ChunkCount(int secretLength) => (secretLength + ChunkBytes - 1) / ChunkBytes;

    public static int ShareLength(int secretLength) => ChunkCount(secretLength) * ElementBytes;

    /// <summary>Shares for x = 1..<paramref name="count"/> (index i holds x = i + 1).</summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int threshold, int count)
    {
        if (threshold < 1 || threshold > count)
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"Shamir: threshold must be in [1, {count}]");
        int chunks = ChunkCount(secret.Length);
        var shares = new byte[count][];
        for (int i = 0; i < count; i++) shares[i] = new byte[chunks * ElementBytes];
        var coeffs = new BigInteger[threshold];
        for (int c = 0; c < chunks; c++)
        {
            var piece = secret.Slice(c * ChunkBytes, Math.Min(ChunkBytes, secret.Length - c * ChunkBytes));
            coeffs[0] = new BigInteger(piece, isUnsigned: true, isBigEndian: false);
            for (int k = 1; k < threshold; k++) coeffs[k] = RandomElement();
            for (int i = 0; i < count; i++)
            {
                BigInteger x = i + 1, y = BigInteger.Zero;
                for (int k = threshold - 1; k >= 0; k--) y = (y * x + coeffs[k]) % Prime;
                WriteElement(y, shares[i].AsSpan(c * ElementBytes, ElementBytes));
            }
        }
        return shares;
    }

    /// <summary>Rebuilds a <paramref name="secretLength"/>-byte secret from at least
    /// <paramref name="threshold"/> shares (the first <paramref name="threshold"/> with distinct x are used).</summary>
    public static byte[] Combine(IReadOnlyList<(int X, byte[] Share)> shares, int threshold, int secretLength)
    {
        var distinct = new List<(int X, byte[] Share)>();
        var seen = new HashSet<int>();
        foreach (var s in shares)
        {
            if (s.X < 1) throw new ArgumentException($"Shamir: share x = {s.X}; x ≥ 1 expected");
            if (s.Share.Length != ShareLength(secretLength))
                throw new ArgumentException($"Shamir: share for x = {s.X} has {s.Share.Length} bytes; {ShareLength(secretLength)} expected");
            if (seen.Add(s.X)) distinct.Add(s);
            if (distinct.Count == threshold) break;
        }
        if (distinct.Count < threshold)
            throw new ArgumentException($"Shamir: {distinct.Count} distinct shares; {threshold} needed");

        // Lagrange basis at 0: l_j = Π_{m≠j} x_m / (x_m − x_j).
        var basis = new BigInteger[threshold];
        for (int j = 0; j < threshold; j++)
        {
            BigInteger num = 1, den = 1;
            for (int m = 0; m < threshold; m++)
            {
                if (m == j) continue;
                num = num * distinct[m].X % Prime;
                den = den * Mod(distinct[m].X - distinct[j].X) % Prime;
            }
            basis[j] = num * BigInteger.ModPow(den, Prime - 2, Prime) % Prime;
        }

        var secret = new byte[secretLength];
        for (int c = 0; c < ChunkCount(secretLength); c++)
        {
            BigInteger v = 0;
            for (int j = 0; j < threshold; j++)
                v += ReadElement(distinct[j].Share.AsSpan(c * ElementBytes, ElementBytes)) * basis[j];
            v %= Prime;
            int len = Math.Min(ChunkBytes, secretLength - c * ChunkBytes);
            if (v.GetByteCount(isUnsigned: true) > len)
                throw new ArgumentException("Shamir: the shares are inconsistent (the rebuilt value does not fit the secret)");
            v.TryWriteBytes(secret.AsSpan(c * ChunkBytes, len), out _, isUnsigned: true, isBigEndian: false);
        }
        return secret;
    }

    private static BigInteger Mod(BigInteger a) { var r = a % Prime; return r.Sign < 0 ? r + Prime : r; }

    private static BigInteger RandomElement()
    {
        Span<byte> b = stackalloc byte[ElementBytes];
        while (true)
        {
            RandomNumberGenerator.Fill(b);
            b[ElementBytes - 1] &= 0x7F;
            var v = new BigInteger(b, isUnsigned: true, isBigEndian: false);
            if (v < Prime) return v;
        }
    }

    private static void WriteElement(BigInteger v, Span<byte> dst)
    {
        dst.Clear();
        v.TryWriteBytes(dst, out _, isUnsigned: true, isBigEndian: false);
    }

    private static BigInteger ReadElement(ReadOnlySpan<byte> src)
    {
        var v = new BigInteger(src, isUnsigned: true, isBigEndian: false);
        if (v >= Prime) throw new ArgumentException("Shamir: a share element is outside the field");
        return v;
    }
}
