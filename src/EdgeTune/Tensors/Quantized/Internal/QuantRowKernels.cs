using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized.Internal;

/// <summary>
/// Width-generic cores of the per-row kernels: dequantize a run of blocks, and the fused
/// dequantize·dot. Each block's integer codes are widened to floats (<see cref="QuantWiden"/>), then
/// scaled (dequantize), or scaled and multiply-added into two running vector accumulators (dot), at
/// the vector width <c>TV</c>. Callers have
/// checked every length; these read and write only inside the ranges they are given.
/// </summary>
internal static unsafe class QuantRowKernels
{
    /// <summary>Dequantizes blocks [b0, b0+nb) of a row of <paramref name="cols"/> elements into
    /// dst (nb × block size floats). Int8's "block" is one element.</summary>
    public static void DequantizeBlocks<TV>(QuantFormat format, byte* row, int cols, int b0, int nb, float* dst)
        where TV : struct, IVec<TV>
    {
        switch (format)
        {
            case QuantFormat.Q8_0:
                for (int b = b0; b < b0 + nb; b++, dst += 32)
                {
                    byte* s = row + b * 34;
                    QuantWiden.SBytes16(Vector128.Load((sbyte*)(s + 2)), dst);
                    QuantWiden.SBytes16(Vector128.Load((sbyte*)(s + 18)), dst + 16);
                    Scale<TV>(dst, 32, QuantWiden.Half(s));
                }
                break;
            case QuantFormat.Q4_0:
                for (int b = b0; b < b0 + nb; b++, dst += 32)
                {
                    byte* s = row + b * 18;
                    var q = Vector128.Load(s + 2);
                    QuantWiden.SBytes16(QuantWiden.LowNibbles(q), dst);
                    QuantWiden.SBytes16(QuantWiden.HighNibbles(q), dst + 16);
                    Scale<TV>(dst, 32, QuantWiden.Half(s));
                }
                break;
            case QuantFormat.NF4:
                {
                    float* book = QuantWiden.Nf4Book;
                    for (int b = b0; b < b0 + nb; b++, dst += 64)
                    {
                        byte* s = row + b * 32;
                        Vector128<byte> q0 = Vector128.Load(s), q1 = Vector128.Load(s + 16), lo = Vector128.Create((byte)0x0F);
                        QuantWiden.Lookup16(q0 & lo, book, dst);
                        QuantWiden.Lookup16(q1 & lo, book, dst + 16);
                        QuantWiden.Lookup16(Vector128.ShiftRightLogical(q0, 4), book, dst + 32);
                        QuantWiden.Lookup16(Vector128.ShiftRightLogical(q1, 4), book, dst + 48);
                        Scale<TV>(dst, 64, Nf4BlockScale(row, cols, b));
                    }
                    break;
                }
            case QuantFormat.Int8:
                {
                    float scale = Unsafe.ReadUnaligned<float>(row);
                    sbyte* q = (sbyte*)(row + 4 + b0);
                    int j = 0;
                    for (; j + 16 <= nb; j += 16) QuantWiden.SBytes16(Vector128.Load(q + j), dst + j);
                    for (; j < nb; j++) dst[j] = q[j];
                    Scale<TV>(dst, nb, scale);
                    break;
                }
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "unknown format");
        }
    }

    /// <summary>Σ dequant(row)[j]·x[j] over the whole row, in float.</summary>
    public static float Dot<TV>(QuantFormat format, byte* row, int cols, float* x)
        where TV : struct, IVec<TV>
    {
        float* t = stackalloc float[64];
        // Two running accumulators across the whole row: each block's values are scaled, then
        // multiply-added, so no block waits on a per-block reduction.
        TV a0 = TV.Zero, a1 = TV.Zero;
        switch (format)
        {
            case QuantFormat.Q8_0:
                for (int b = 0; b < cols / 32; b++, x += 32)
                {
                    byte* s = row + b * 34;
                    QuantWiden.SBytes16(Vector128.Load((sbyte*)(s + 2)), t);
                    QuantWiden.SBytes16(Vector128.Load((sbyte*)(s + 18)), t + 16);
                    DotScaled(t, x, 32, TV.Broadcast(QuantWiden.Half(s)), ref a0, ref a1);
                }
                return TV.Sum(TV.Add(a0, a1));
            case QuantFormat.Q4_0:
                for (int b = 0; b < cols / 32; b++, x += 32)
                {
                    byte* s = row + b * 18;
                    var q = Vector128.Load(s + 2);
                    QuantWiden.SBytes16(QuantWiden.LowNibbles(q), t);
                    QuantWiden.SBytes16(QuantWiden.HighNibbles(q), t + 16);
                    DotScaled(t, x, 32, TV.Broadcast(QuantWiden.Half(s)), ref a0, ref a1);
                }
                return TV.Sum(TV.Add(a0, a1));
            case QuantFormat.NF4:
                {
                    float* book = QuantWiden.Nf4Book;
                    var lo = Vector128.Create((byte)0x0F);
                    for (int b = 0; b < cols / 64; b++, x += 64)
                    {
                        byte* s = row + b * 32;
                        Vector128<byte> q0 = Vector128.Load(s), q1 = Vector128.Load(s + 16);
                        QuantWiden.Lookup16(q0 & lo, book, t);
                        QuantWiden.Lookup16(q1 & lo, book, t + 16);
                        QuantWiden.Lookup16(Vector128.ShiftRightLogical(q0, 4), book, t + 32);
                        QuantWiden.Lookup16(Vector128.ShiftRightLogical(q1, 4), book, t + 48);
                        DotScaled(t, x, 64, TV.Broadcast(Nf4BlockScale(row, cols, b)), ref a0, ref a1);
                    }
                    return TV.Sum(TV.Add(a0, a1));
                }
            case QuantFormat.Int8:
                {
                    sbyte* q = (sbyte*)(row + 4);
                    int j = 0;
                    for (; j + 16 <= cols; j += 16)
                    {
                        QuantWiden.SBytes16(Vector128.Load(q + j), t);
                        DotScaled(t, x + j, 16, TV.Broadcast(1f), ref a0, ref a1);
                    }
                    float sum = TV.Sum(TV.Add(a0, a1));
                    for (; j < cols; j++) sum += q[j] * x[j];
                    return sum * Unsafe.ReadUnaligned<float>(row);
                }
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "unknown format");
        }
    }

    /// <summary>The decoded scale of NF4 block <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Nf4BlockScale(byte* row, int cols, int b)
    {
        int nb = cols / QuantReference.Nf4Block;
        byte* headers = row + cols / 2 + nb + 8 * (b / QuantReference.Nf4Group);
        return QuantReference.Nf4Scale(Unsafe.ReadUnaligned<float>(headers), Unsafe.ReadUnaligned<float>(headers + 4), (sbyte)row[cols / 2 + b]);
    }

    /// <summary>p[0..n) *= s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale<TV>(float* p, int n, float s) where TV : struct, IVec<TV>
    {
        TV vs = TV.Broadcast(s);
        int i = 0;
        for (; i + TV.Count <= n; i += TV.Count) TV.Store(TV.Mul(TV.Load(in p[i], 0), vs), ref p[i], 0);
        for (; i < n; i++) p[i] *= s;
    }

    /// <summary>a0/a1 += (t[i]·s)·x[i] over n floats (n a multiple of TV.Count), alternating
    /// between the two accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DotScaled<TV>(float* t, float* x, int n, TV s, ref TV a0, ref TV a1) where TV : struct, IVec<TV>
    {
        int i = 0;
        for (; i + 2 * TV.Count <= n; i += 2 * TV.Count)
        {
            a0 = TV.Fma(TV.Mul(TV.Load(in t[i], 0), s), TV.Load(in x[i], 0), a0);
            a1 = TV.Fma(TV.Mul(TV.Load(in t[i + TV.Count], 0), s), TV.Load(in x[i + TV.Count], 0), a1);
        }
        if (i < n) a0 = TV.Fma(TV.Mul(TV.Load(in t[i], 0), s), TV.Load(in x[i], 0), a0);
    }
}
