using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeTune.Tensors.Quantized.Internal;

/// <summary>
/// The AVX-512 (BW) decode dot for Q8_0 and Q4_0 rows, in the GGUF block layout as stored (no repack).
/// Per row, the block scales are first widened from f16 sixteen at a time (<see cref="RowScales"/>:
/// integer shifts, exact, Inf/NaN kept) into a small float buffer, so the inner loop does no scalar
/// conversion. Two blocks per step: 64 weight codes in one 512-bit register times 64 x codes by
/// vpmaddubsw (unsigned × signed byte pairs summed to int16) and vpmaddwd (to int32), converted and
/// scaled by [d_w·d_x ×8 | ×8] with one FMA. Q8_0: |w| against x carrying w's sign. Q4_0: the 32 code
/// bytes give 64 unsigned nibbles (0..15), pairs ≤ 2·15·127; the −8 offset is applied once per row as −Σ_b d_w(b)·8·d_x(b)·Σ_j q_x(b, j), with the
/// x block sums taken when x is quantized. Block products are exact integers in both, as in the
/// other paths, so only the float summation order differs from <see cref="DotScalar{TC}"/>.
/// </summary>
internal static unsafe partial class QuantIntDot
{
    /// <summary>Whether this machine runs <see cref="IntDotPath.Avx512"/>.</summary>
    public static bool Avx512Supported => Avx512BW.IsSupported;

    /// <summary>Blocks rounded up to the 16-lane scale vectors (the length of the per-row scale buffers).</summary>
    public static int PaddedBlocks(int blocks) => (blocks + 15) & ~15;

    /// <summary>The extra forms of a quantized activation row the AVX-512 path reads: d_x padded with zeros to
    /// <see cref="PaddedBlocks"/>, and 8·d_x·Σq per block (Q4_0's offset; zero padded).</summary>
    public static void PrepareAvx512(sbyte* q, float* d, int blocks, float* dPadded, float* offset)
    {
        int padded = PaddedBlocks(blocks);
        for (int b = 0; b < blocks; b++)
        {
            // Σ of the 32 codes: sign-extended to int16, vpmaddwd against ones, then a lane sum.
            var w = Avx512BW.ConvertToVector512Int16(Vector256.Load(q + b * Block));
            int sum = Vector512.Sum(Avx512BW.MultiplyAddAdjacent(w, Vector512.Create((short)1)));
            dPadded[b] = d[b];
            offset[b] = 8f * d[b] * sum;
        }
        for (int b = blocks; b < padded; b++) dPadded[b] = offset[b] = 0;
    }

    /// <summary>dw[b] = the row's block scales as floats for b &lt; blocks, 0 up to <see cref="PaddedBlocks"/>
    /// (<paramref name="stride"/>: bytes per block, the f16 scale first).</summary>
    public static void RowScales(byte* row, int blocks, int stride, float* dw)
    {
        int b0 = 0;
        if (stride == 18 && Avx512Vbmi.IsSupported)
        {
            // Q4_0: sixteen blocks are 288 bytes; the scales of blocks 0..7 lie in the first 128 (at 18·i), those of
            // 8..15 in the 128 from byte 144, so one two-register byte permute (vpermt2b) per half collects them.
            // A last partial group loads only the row's bytes (masked loads: no read past the row, zeros beyond it).
            var idx = Vector512.Create((byte)0, 1, 18, 19, 36, 37, 54, 55, 72, 73, 90, 91, 108, 109, 126, 127,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
            for (; b0 < blocks; b0 += 16)
            {
                byte* p = row + (nint)b0 * 18;
                int valid = (blocks - b0) * 18;
                var lo = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p, valid), idx, LoadUpTo(p + 64, valid - 64)).GetLower().GetLower();
                var hi = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p + 144, valid - 144), idx, LoadUpTo(p + 208, valid - 208)).GetLower().GetLower();
                var h = Avx512F.ConvertToVector512UInt32(Vector256.Create(lo, hi).AsUInt16());
                HalvesToSingles(h).Store(dw + b0);
            }
        }
        else if (stride == 34 && Avx512Vbmi.IsSupported)
        {
            // Q8_0: sixteen blocks are 544 bytes; each 136-byte quarter holds four scales (at 34·i) in its first 128
            // bytes. One vpermt2b per quarter puts its four halves at words 4q..4q+3; three selects merge the quarters.
            Vector512<byte> i0 = s_q8Quarters[0], i1 = s_q8Quarters[1], i2 = s_q8Quarters[2], i3 = s_q8Quarters[3];
            var m0 = Vector512.Create(ulong.MaxValue, 0, 0, 0, 0, 0, 0, 0).AsByte();
            var m1 = Vector512.Create(0, ulong.MaxValue, 0, 0, 0, 0, 0, 0).AsByte();
            var m2 = Vector512.Create(0, 0, ulong.MaxValue, 0, 0, 0, 0, 0).AsByte();
            for (; b0 < blocks; b0 += 16)
            {
                byte* p = row + (nint)b0 * 34;
                int v = (blocks - b0) * 34;
                var q0 = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p, v), i0, LoadUpTo(p + 64, v - 64));
                var q1 = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p + 136, v - 136), i1, LoadUpTo(p + 200, v - 200));
                var q2 = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p + 272, v - 272), i2, LoadUpTo(p + 336, v - 336));
                var q3 = Avx512Vbmi.PermuteVar64x8x2(LoadUpTo(p + 408, v - 408), i3, LoadUpTo(p + 472, v - 472));
                var all = Vector512.ConditionalSelect(m0, q0, Vector512.ConditionalSelect(m1, q1, Vector512.ConditionalSelect(m2, q2, q3)));
                HalvesToSingles(Avx512F.ConvertToVector512UInt32(all.GetLower().AsUInt16())).Store(dw + b0);
            }
        }
        // Otherwise (no VBMI): 8-lane gathers of the dword at each block's start (its f16 scale
        // in the low half; the upper half is masked off). Lanes past the row read the last block again and are zeroed.
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        for (; b0 < blocks; b0 += 16)
        {
            int* p = (int*)(row + (nint)b0 * stride);
            var last = Vector256.Create(blocks - 1 - b0);
            var g0 = Avx2.GatherVector256(p, Vector256.Min(lane, last) * stride, 1);
            var g1 = blocks - b0 > 8 ? Avx2.GatherVector256(p, Vector256.Min(lane + Vector256.Create(8), last) * stride, 1) : Vector256<int>.Zero;
            var f = HalvesToSingles(Vector512.Create(g0, g1).AsUInt32());
            if (blocks - b0 < 16)
                f = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(blocks - b0)).AsSingle(), f, Vector512<float>.Zero);
            f.Store(dw + b0);
        }
    }

    /// <summary>The <paramref name="valid"/> bytes from <paramref name="p"/> that belong to the row (all 64 when
    /// valid ≥ 64, none when ≤ 0), zeros elsewhere; masked-off bytes are not read, so nothing past the row is touched.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> LoadUpTo(byte* p, int valid)
    {
        if (valid >= 64) return Vector512.Load(p);
        if (valid <= 0) return Vector512<byte>.Zero;
        var mask = Vector512.LessThan(s_byteIndex, Vector512.Create((byte)valid));
        return Avx512BW.MaskLoad(p, mask, Vector512<byte>.Zero);
    }

    private static readonly Vector512<byte> s_byteIndex = Vector512.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
        48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63);

    /// <summary>vpermt2b indices placing the scale bytes of Q8_0 blocks 0..3 of a 128-byte window at bytes 8q..8q+7.</summary>
    private static readonly Vector512<byte>[] s_q8Quarters = [Quarter(0), Quarter(1), Quarter(2), Quarter(3)];

    private static Vector512<byte> Quarter(int q)
    {
        var idx = stackalloc byte[64];
        for (int i = 0; i < 64; i++) idx[i] = 0;
        for (int i = 0; i < 8; i++) idx[8 * q + i] = (byte)(34 * (i / 2) + i % 2);
        return Vector512.Load(idx);
    }

    /// <summary>16 f16 bit patterns (the low halves of <paramref name="h"/>'s lanes) as floats, exactly: the 15 magnitude bits placed in a float's exponent/mantissa
    /// and multiplied by 2^112 (subnormal halves land on normal floats exactly); exponent 31 (Inf/NaN) gets the
    /// float's all-ones exponent; then the sign.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalvesToSingles(Vector512<uint> h)
    {
        var bits = (h & Vector512.Create(0x7FFFu)) << 13;
        var special = Vector512.Equals(h & Vector512.Create(0x7C00u), Vector512.Create(0x7C00u));
        bits |= special & Vector512.Create(0x7F800000u);
        var mag = bits.AsSingle() * Vector512.Create(5192296858534827628530496329220096f); // 2^112
        return (mag.AsUInt32() | (h & Vector512.Create(0x8000u)) << 16).AsSingle();
    }

    /// <summary>Σ_b dw[b]·d_x(b)·Σ_j w·x over a Q8_0 row (34-byte blocks), two blocks per step.</summary>
    public static float DotQ8Avx512(byte* row, int blocks, sbyte* xq, float* dx, float* dw)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
        {
            acc0 = Avx512F.FusedMultiplyAdd(PairQ8(row, b, xq, true), PairScales(dw, dx, b), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(PairQ8(row, b + 2, xq, true), PairScales(dw, dx, b + 2), acc1);
        }
        for (; b < blocks; b += 2)
            acc0 = Avx512F.FusedMultiplyAdd(PairQ8(row, b, xq, b + 1 < blocks), PairScales(dw, dx, b), acc0);
        return Vector512.Sum(acc0 + acc1);
    }

    /// <summary>Q8_0 blocks b and b+1 (b+1 only when <paramref name="two"/>) as in <see cref="PairQ4"/>: |w| (unsigned) times
    /// x with w's sign moved onto it (vpmaddubsw pairs ≤ 2·128·127 &lt; 2¹⁵), then vpmaddwd; int32 lanes 0..7 block b, 8..15 b+1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PairQ8(byte* row, int b, sbyte* xq, bool two)
    {
        sbyte* p = (sbyte*)(row + b * 34 + 2);
        var w = Vector512.Create(Vector256.Load(p), two ? Vector256.Load(p + 34) : Vector256<sbyte>.Zero);
        var x = two ? Vector512.Load(xq + b * Block) : Vector256.Load(xq + b * Block).ToVector512();
        var signed = Vector512.ConditionalSelect(Vector512.LessThan(w, Vector512<sbyte>.Zero), -x, x);
        var p16 = Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(w), signed);
        return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1)));
    }

    /// <summary>Σ_b dw[b]·d_x(b)·Σ_j (c−8)·x over a Q4_0 row (18-byte blocks), c the unsigned nibbles; the −8 part
    /// through <paramref name="offset"/> (8·d_x·Σq per block, padded like <paramref name="dw"/>).</summary>
    public static float DotQ4Avx512(byte* row, int blocks, sbyte* xq, float* dx, float* offset, float* dw)
    {
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
        {
            acc0 = Avx512F.FusedMultiplyAdd(PairQ4(row, b, xq, true), PairScales(dw, dx, b), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(PairQ4(row, b + 2, xq, true), PairScales(dw, dx, b + 2), acc1);
        }
        for (; b < blocks; b += 2)
            acc0 = Avx512F.FusedMultiplyAdd(PairQ4(row, b, xq, b + 1 < blocks), PairScales(dw, dx, b), acc0);
        // The −8 offset of every code: Σ_b dw[b]·offset[b] (padding lanes are zero on both sides).
        var corr = Vector512<float>.Zero;
        for (int c = 0; c < blocks; c += 16)
            corr = Avx512F.FusedMultiplyAdd(Vector512.Load(dw + c), Vector512.Load(offset + c), corr);
        return Vector512.Sum(acc0 + acc1 - corr);
    }

    /// <summary>
    /// Four Q4_0 rows (<paramref name="row0"/> and the three after it, <paramref name="rowBytes"/> apart) against one
    /// quantized x row: out[r] = Σ_b dw_r[b]·d_x(b)·Σ_j (c−8)·x. One block of all four rows per step: their 4×16 code
    /// bytes fill one register (128-bit lane r = row r), so x's two 16-code halves are loaded once and broadcast, and
    /// the int32 partial sums stay in lane r until one reduction per row at the end (the one-row kernel reduces every
    /// row and loads x per row). <paramref name="dw4"/>: the four rows' widened scales, <paramref name="nbp"/> apart
    /// (<see cref="RowScales"/>, zero padded); <paramref name="dx"/> and <paramref name="offset"/> as in
    /// <see cref="DotQ4Avx512"/>. Block products are exact integers; only the float summation order differs.
    /// </summary>
    public static void DotQ4x4Avx512(byte* row0, int rowBytes, int blocks, sbyte* xq, float* dx, float* offset, float* dw4, int nbp, float* result)
    {
        byte* r0 = row0 + 2, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        float* d0 = dw4, d1 = d0 + nbp, d2 = d1 + nbp, d3 = d2 + nbp;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, corr = Vector512<float>.Zero;
        for (int b4 = 0; b4 < blocks; b4 += 4)
        {
            // Lanes (r, i) = row r, block b4+i: the raw scales, then times d_x; the −8 offsets summed on the way.
            var dw = Vector512.Create(Vector256.Create(Vector128.Load(d0 + b4), Vector128.Load(d1 + b4)),
                Vector256.Create(Vector128.Load(d2 + b4), Vector128.Load(d3 + b4)));
            corr = Avx512F.FusedMultiplyAdd(dw, Vector512.Create(Vector128.Load(offset + b4)), corr);
            var sc = dw * Vector512.Create(Vector128.Load(dx + b4));
            int end = Math.Min(4, blocks - b4);
            acc0 = Avx512F.FusedMultiplyAdd(Quad4(r0, r1, r2, r3, b4, xq), Avx512F.PermuteVar16x32(sc, s_lane0), acc0);
            if (end > 1) acc1 = Avx512F.FusedMultiplyAdd(Quad4(r0, r1, r2, r3, b4 + 1, xq), Avx512F.PermuteVar16x32(sc, s_lane1), acc1);
            if (end > 2) acc0 = Avx512F.FusedMultiplyAdd(Quad4(r0, r1, r2, r3, b4 + 2, xq), Avx512F.PermuteVar16x32(sc, s_lane2), acc0);
            if (end > 3) acc1 = Avx512F.FusedMultiplyAdd(Quad4(r0, r1, r2, r3, b4 + 3, xq), Avx512F.PermuteVar16x32(sc, s_lane3), acc1);
        }
        var v = acc0 + acc1 - corr;
        var lo = v.GetLower();
        var hi = v.GetUpper();
        result[0] = Vector128.Sum(lo.GetLower());
        result[1] = Vector128.Sum(lo.GetUpper());
        result[2] = Vector128.Sum(hi.GetLower());
        result[3] = Vector128.Sum(hi.GetUpper());
    }

    /// <summary>Whether the four-row Q4_0 kernel that reads the GGUF blocks with byte permutes (<see cref="DotQ4x4Vbmi"/>) runs here.</summary>
    public static bool Q4VbmiSupported => Avx512BW.IsSupported && Avx512Vbmi.IsSupported;

    /// <summary>Bytes of the regrouped x that <see cref="DotQ4x4Vbmi"/> reads: 128 per group of four blocks (the last group zero padded).</summary>
    public static int RegroupedBytes(int blocks) => (blocks + 3) / 4 * 4 * Block;

    /// <summary>x's codes regrouped for <see cref="DotQ4x4Vbmi"/>: per group of four blocks, the first halves
    /// (elements 0..15) of the four blocks, then their second halves (16..31); blocks past the row are zeros.</summary>
    public static void RegroupActivation(sbyte* q, int blocks, sbyte* dst)
    {
        int padded = (blocks + 3) / 4 * 4;
        for (int b = 0; b < padded; b++)
        {
            sbyte* g = dst + (nint)(b / 4) * 4 * Block + b % 4 * 16;
            var lo = b < blocks ? Vector128.Load(q + b * Block) : Vector128<sbyte>.Zero;
            var hi = b < blocks ? Vector128.Load(q + b * Block + 16) : Vector128<sbyte>.Zero;
            lo.Store(g);
            hi.Store(g + 64);
        }
    }

    /// <summary>
    /// Four Q4_0 rows (<paramref name="row0"/> and the three after it, <paramref name="rowBytes"/> apart, GGUF blocks as
    /// stored) against one quantized x row: out[r] = Σ_b d_w(r, b)·d_x(b)·Σ_j (c−8)·x, as <see cref="DotQ4x4Avx512"/>
    /// but with no per-row scale pass. A row's eight blocks (144 bytes) are read with three loads ([0, 64), [64, 128),
    /// [128, 144)); per four blocks one two-register byte permute (vpermt2b) packs their 64 code bytes into one register
    /// (block i in 128-bit lane i), and one per pair of rows collects the f16 scales of four blocks of both rows, which
    /// are widened for all four rows at once (<see cref="UpperHalvesToSingles"/>, exact). x comes regrouped
    /// (<see cref="RegroupActivation"/>) so that the first and second halves of four blocks are two plain loads. The
    /// last blocks (fewer than eight) go four at a time with masked loads of [0, 64) and [8, 72) (zeros past the row: no
    /// byte after the last row is touched). <paramref name="dx"/>, <paramref name="offset"/>: as in
    /// <see cref="DotQ4Avx512"/> (padded to 16 blocks). Block products are exact integers; only the float summation
    /// order differs from <see cref="DotScalar{TC}"/>.
    /// </summary>
    public static void DotQ4x4Vbmi(byte* row0, int rowBytes, int blocks, sbyte* xr, float* dx, float* offset, float* result, nint readable = 0)
    {
        byte* r0 = row0, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = acc0, acc2 = acc0, acc3 = acc0, corr = acc0;
        // The permute indices, loaded once (the loop keeps them in registers).
        Vector512<byte> codesA = s_q4CodesA, codesB = s_q4CodesB, codesT = s_q4CodesTail;
        Vector512<byte> sc01 = s_q4Scales01, sc23 = s_q4Scales23, sc01B = s_q4Scales01B, sc23B = s_q4Scales23B;
        int b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            nint o = (nint)b * 18;
            var l00 = Vector512.Load(r0 + o); var l01 = Vector512.Load(r0 + o + 64); var l02 = Vector128.Load(r0 + o + 128).ToVector256Unsafe().ToVector512Unsafe();
            var l10 = Vector512.Load(r1 + o); var l11 = Vector512.Load(r1 + o + 64); var l12 = Vector128.Load(r1 + o + 128).ToVector256Unsafe().ToVector512Unsafe();
            var l20 = Vector512.Load(r2 + o); var l21 = Vector512.Load(r2 + o + 64); var l22 = Vector128.Load(r2 + o + 128).ToVector256Unsafe().ToVector512Unsafe();
            var l30 = Vector512.Load(r3 + o); var l31 = Vector512.Load(r3 + o + 64); var l32 = Vector128.Load(r3 + o + 128).ToVector256Unsafe().ToVector512Unsafe();
            // Blocks b..b+3: bytes [0, 72) of each row, in [0, 64) ++ [64, 128).
            Q4Group(Avx512Vbmi.PermuteVar64x8x2(l00, codesA, l01), Avx512Vbmi.PermuteVar64x8x2(l10, codesA, l11),
                Avx512Vbmi.PermuteVar64x8x2(l20, codesA, l21), Avx512Vbmi.PermuteVar64x8x2(l30, codesA, l31),
                Scales(Avx512Vbmi.PermuteVar64x8x2(l00, sc01, l10), Avx512Vbmi.PermuteVar64x8x2(l20, sc23, l30)),
                xr + (nint)b * Block, dx + b, offset + b, ref acc0, ref acc1, ref acc2, ref acc3, ref corr);
            // Blocks b+4..b+7: bytes [72, 144), in [64, 128) ++ [128, 144).
            Q4Group(Avx512Vbmi.PermuteVar64x8x2(l01, codesB, l02), Avx512Vbmi.PermuteVar64x8x2(l11, codesB, l12),
                Avx512Vbmi.PermuteVar64x8x2(l21, codesB, l22), Avx512Vbmi.PermuteVar64x8x2(l31, codesB, l32),
                Scales(Avx512Vbmi.PermuteVar64x8x2(l01, sc01B, l11), Avx512Vbmi.PermuteVar64x8x2(l21, sc23B, l31)),
                xr + (nint)(b + 4) * Block, dx + b + 4, offset + b + 4, ref acc0, ref acc1, ref acc2, ref acc3, ref corr);
        }
        // The last blocks: four at a time, and a last one or two blocks of all four rows in two registers (PairTail). Where
        // the matrix goes on after row 3 (readable), plain loads may run into the next row: its bytes meet zeros in x, and
        // the scales of blocks past the row are cleared (a stray Inf would give NaN).
        Vector512<float> tail01 = Vector512<float>.Zero, tail23 = tail01;
        if (blocks - b is 1 or 2)
        {
            nint o = (nint)b * 18;
            bool plain = 3 * (nint)rowBytes + o + 64 <= readable;
            int v = (blocks - b) * 18;
            PairTail(plain ? Vector512.Load(r0 + o) : LoadUpTo(r0 + o, v), plain ? Vector512.Load(r1 + o) : LoadUpTo(r1 + o, v),
                plain ? Vector512.Load(r2 + o) : LoadUpTo(r2 + o, v), plain ? Vector512.Load(r3 + o) : LoadUpTo(r3 + o, v),
                blocks - b, xr + (nint)b * Block, dx + b, offset + b, out tail01, out tail23, ref corr);
            b = blocks;
        }
        for (; b + 4 <= blocks || b < blocks && 3 * (nint)rowBytes + b * 18 + 72 <= readable; b += 4)
        {
            nint o = (nint)b * 18;
            var l00 = Vector512.Load(r0 + o); var l10 = Vector512.Load(r1 + o); var l20 = Vector512.Load(r2 + o); var l30 = Vector512.Load(r3 + o);
            var dw = Scales(Avx512Vbmi.PermuteVar64x8x2(l00, sc01, l10), Avx512Vbmi.PermuteVar64x8x2(l20, sc23, l30), blocks - b);
            Q4Group(Avx512Vbmi.PermuteVar64x8x2(l00, codesT, Vector512.Load(r0 + o + 8)), Avx512Vbmi.PermuteVar64x8x2(l10, codesT, Vector512.Load(r1 + o + 8)),
                Avx512Vbmi.PermuteVar64x8x2(l20, codesT, Vector512.Load(r2 + o + 8)), Avx512Vbmi.PermuteVar64x8x2(l30, codesT, Vector512.Load(r3 + o + 8)),
                dw, xr + (nint)b * Block, dx + b, offset + b, ref acc0, ref acc1, ref acc2, ref acc3, ref corr);
        }
        for (; b < blocks; b += 4)
        {
            nint o = (nint)b * 18;
            int v = (blocks - b) * 18;
            var l00 = LoadUpTo(r0 + o, v); var l10 = LoadUpTo(r1 + o, v); var l20 = LoadUpTo(r2 + o, v); var l30 = LoadUpTo(r3 + o, v);
            Q4Group(Avx512Vbmi.PermuteVar64x8x2(l00, codesT, LoadUpTo(r0 + o + 8, v - 8)), Avx512Vbmi.PermuteVar64x8x2(l10, codesT, LoadUpTo(r1 + o + 8, v - 8)),
                Avx512Vbmi.PermuteVar64x8x2(l20, codesT, LoadUpTo(r2 + o + 8, v - 8)), Avx512Vbmi.PermuteVar64x8x2(l30, codesT, LoadUpTo(r3 + o + 8, v - 8)),
                Scales(Avx512Vbmi.PermuteVar64x8x2(l00, sc01, l10), Avx512Vbmi.PermuteVar64x8x2(l20, sc23, l30)),
                xr + (nint)b * Block, dx + b, offset + b, ref acc0, ref acc1, ref acc2, ref acc3, ref corr);
        }
        // Each accumulator folded to 128 bits, less corr's 128-bit lane r (row r's −8 offsets), then the four summed
        // across with two rounds of pairwise adds: result[r] = Σ acc_r − Σ corr lane r.
        var c = corr.GetLower();
        var cu = corr.GetUpper();
        var f0 = Fold(acc0) + Fold(tail01.GetLower()) - c.GetLower();
        var f1 = Fold(acc1) + Fold(tail01.GetUpper()) - c.GetUpper();
        var f2 = Fold(acc2) + Fold(tail23.GetLower()) - cu.GetLower();
        var f3 = Fold(acc3) + Fold(tail23.GetUpper()) - cu.GetUpper();
        Sse3.HorizontalAdd(Sse3.HorizontalAdd(f0, f1), Sse3.HorizontalAdd(f2, f3)).Store(result);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fold(Vector512<float> v) => Fold(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fold(Vector256<float> v) => v.GetLower() + v.GetUpper();

    /// <summary>The last <paramref name="count"/> (1 or 2) blocks of four rows (l_r: 64 bytes from the first of them in
    /// row r): rows 0 and 1 share one code register ([r0 b, r0 b+1, r1 b, r1 b+1] in its 128-bit lanes), rows 2 and 3
    /// another, so the two blocks cost half a four-block group. x's halves of blocks b, b+1 are broadcast from the
    /// regrouped row. Out: row 0's partial sums in the lower 256 bits of <paramref name="t01"/>, row 1's in the upper,
    /// likewise <paramref name="t23"/>; the −8 offsets go to <paramref name="corr"/> as in <see cref="Q4Group"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PairTail(Vector512<byte> l0, Vector512<byte> l1, Vector512<byte> l2, Vector512<byte> l3, int count,
        sbyte* xr, float* dx, float* offset, out Vector512<float> t01, out Vector512<float> t23, ref Vector512<float> corr)
    {
        var dw = Scales(Avx512Vbmi.PermuteVar64x8x2(l0, s_q4Scales01, l1), Avx512Vbmi.PermuteVar64x8x2(l2, s_q4Scales23, l3), count);
        corr = Avx512F.FusedMultiplyAdd(dw, Avx512F.BroadcastVector128ToVector512(offset), corr);
        var sc = dw * Avx512F.BroadcastVector128ToVector512(dx);
        // (Avx512F.BroadcastVector256ToVector512 on the same bytes, reinterpreted, gave wrong sums once optimized (.NET 10,
        // right under MinOpts), so the broadcast is spelled as a 256-bit load and Create.)
        var xl = Vector512.Create(Vector256.Load(xr));
        var xh = Vector512.Create(Vector256.Load(xr + 64));
        t01 = Codes4(Avx512Vbmi.PermuteVar64x8x2(l0, s_pairCodes, l1), xl, xh) * Avx512F.PermuteVar16x32(sc, s_pair01);
        t23 = Codes4(Avx512Vbmi.PermuteVar64x8x2(l2, s_pairCodes, l3), xl, xh) * Avx512F.PermuteVar16x32(sc, s_pair23);
    }

    /// <summary>vpermt2b indices over two rows' 64-byte windows: 128-bit lane 2p+i = code bytes of block i of row p
    /// (window bytes 18i+2 .. 18i+17).</summary>
    private static readonly Vector512<byte> s_pairCodes = PairCodeIndex();

    private static Vector512<byte> PairCodeIndex()
    {
        var idx = stackalloc byte[64];
        for (int p = 0; p < 2; p++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 16; j++)
                    idx[16 * (2 * p + i) + j] = (byte)(64 * p + 18 * i + 2 + j);
        return Vector512.Load(idx);
    }

    // vpermps indices for PairTail: lane 2p+i (row p of the pair, block i) gets the scale at lane 4r+i, r = p (+2).
    private static readonly Vector512<int> s_pair01 = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 4, 4, 4, 4, 5, 5, 5, 5);
    private static readonly Vector512<int> s_pair23 = s_pair01 + Vector512.Create(8);

    /// <summary>Dword lane 4p+i of a scale vector belongs to block i of its group.</summary>
    private static readonly Vector512<int> s_blockOfLane = Vector512.Create(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);

    /// <summary>One group of four blocks of four rows: c_r, row r's 64 code bytes (block i in 128-bit lane i); dw: the
    /// scales, lane 4r+i = row r, block i (<see cref="Scales"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q4Group(Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3,
        Vector512<float> dw, sbyte* xr, float* dx, float* offset,
        ref Vector512<float> acc0, ref Vector512<float> acc1, ref Vector512<float> acc2, ref Vector512<float> acc3, ref Vector512<float> corr)
    {
        corr = Avx512F.FusedMultiplyAdd(dw, Avx512F.BroadcastVector128ToVector512(offset), corr);
        var sc = dw * Avx512F.BroadcastVector128ToVector512(dx);
        var xl = Vector512.Load(xr);
        var xh = Vector512.Load(xr + 64);
        acc0 = Avx512F.FusedMultiplyAdd(Codes4(c0, xl, xh), Avx512F.PermuteVar16x32(sc, s_row0), acc0);
        acc1 = Avx512F.FusedMultiplyAdd(Codes4(c1, xl, xh), Avx512F.PermuteVar16x32(sc, s_row1), acc1);
        acc2 = Avx512F.FusedMultiplyAdd(Codes4(c2, xl, xh), Avx512F.PermuteVar16x32(sc, s_row2), acc2);
        acc3 = Avx512F.FusedMultiplyAdd(Codes4(c3, xl, xh), Avx512F.PermuteVar16x32(sc, s_row3), acc3);
    }

    /// <summary>The scales of a group as floats, lane 4r+i = row r, block i, from s01 and s23 (the f16 of rows 0/1 and 2/3
    /// in the upper half of dword lane 4r+i: lanes 0..7 of s01, 8..15 of s23); lanes of blocks at or past
    /// <paramref name="count"/> are cleared (past the row they hold the next row's bytes or zeros).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scales(Vector512<byte> s01, Vector512<byte> s23, int count = 4)
    {
        // 128-bit lanes 0, 1 of s01 and 2, 3 of s23 (one vshufi64x2).
        var dw = UpperHalvesToSingles(Avx512F.Shuffle4x128(s01.AsInt32(), s23.AsInt32(), 0b11_10_01_00));
        return count >= 4 ? dw : Vector512.ConditionalSelect(Vector512.LessThan(s_blockOfLane, Vector512.Create(count)).AsSingle(), dw, Vector512<float>.Zero);
    }

    /// <summary>The f16 bit patterns in the upper halves of <paramref name="h"/>'s lanes as floats, exactly (lower halves
    /// ignored): an arithmetic shift by 3 puts the sign in place and the 15 magnitude bits in a float's exponent/mantissa
    /// (the mask clears the sign's copies and the lower half), times 2^112 as in <see cref="HalvesToSingles"/>; exponent 31
    /// (Inf/NaN) then gets the float's all-ones exponent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> UpperHalvesToSingles(Vector512<int> h)
    {
        var bits = Vector512.ShiftRightArithmetic(h, 3) & Vector512.Create(unchecked((int)0x8FFFE000));
        var special = Vector512.Equals(bits & Vector512.Create(0x0F800000), Vector512.Create(0x0F800000));
        var f = bits.AsSingle() * Vector512.Create(5192296858534827628530496329220096f); // 2^112
        return (f.AsInt32() | special & Vector512.Create(0x7F800000)).AsSingle();
    }


    /// <summary>One row's four blocks (code bytes, block i in 128-bit lane i): int32 lanes 4i..4i+3 hold block i's
    /// partial sums of c·x, as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Codes4(Vector512<byte> c, Vector512<sbyte> xl, Vector512<sbyte> xh)
    {
        var mask = Vector512.Create((byte)0x0F);
        var lo = c & mask;
        var hi = Vector512.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & mask;
        // Pairs ≤ 2·15·127 each, so the two int16 sums stay below 2¹⁵.
        var p16 = Avx512BW.MultiplyAddAdjacent(lo, xl) + Avx512BW.MultiplyAddAdjacent(hi, xh);
        return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1)));
    }

    /// <summary>vpermt2b indices: byte 16i+j = code byte j of block i, that is window byte start+18i+2+j, where the
    /// first register holds window bytes [0, 64) and the second those from <paramref name="second"/> on (the 8-block
    /// step: 64; the tail, which reads [0, 64) and [8, 72): 8).</summary>
    private static Vector512<byte> Q4CodeIndex(int start, int second)
    {
        var idx = stackalloc byte[64];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 16; j++)
            {
                int k = start + 18 * i + 2 + j;
                idx[16 * i + j] = (byte)(k < 64 ? k : 64 + k - second);
            }
        return Vector512.Load(idx);
    }

    private static readonly Vector512<byte> s_q4CodesA = Q4CodeIndex(0, 64), s_q4CodesB = Q4CodeIndex(8, 64), s_q4CodesTail = Q4CodeIndex(0, 8);

    /// <summary>vpermt2b indices over two rows' 64-byte windows: dword lane <paramref name="firstLane"/> + 4p + i (p the
    /// row's place in the pair) gets that row's block-i scale bytes (window bytes <paramref name="start"/> + 18i, +1) in
    /// its upper half.</summary>
    private static Vector512<byte> Q4ScaleIndex(int firstLane, int start)
    {
        var idx = stackalloc byte[64];
        for (int i = 0; i < 64; i++) idx[i] = 0;
        for (int p = 0; p < 2; p++)
            for (int i = 0; i < 4; i++)
            {
                int lane = firstLane + 4 * p + i;
                idx[4 * lane + 2] = (byte)(64 * p + start + 18 * i);
                idx[4 * lane + 3] = (byte)(64 * p + start + 18 * i + 1);
            }
        return Vector512.Load(idx);
    }

    private static readonly Vector512<byte> s_q4Scales01 = Q4ScaleIndex(0, 0), s_q4Scales23 = Q4ScaleIndex(8, 0),
        s_q4Scales01B = Q4ScaleIndex(0, 8), s_q4Scales23B = Q4ScaleIndex(8, 8);

    // vpermps indices: row r's scale of block i (lane 4r+i) over block i's four lanes.
    private static readonly Vector512<int> s_row0 = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    private static readonly Vector512<int> s_row1 = s_row0 + Vector512.Create(4);
    private static readonly Vector512<int> s_row2 = s_row1 + Vector512.Create(4);
    private static readonly Vector512<int> s_row3 = s_row2 + Vector512.Create(4);

    // vpermps indices: block i of a four-block group, repeated over each row's four lanes.
    private static readonly Vector512<int> s_lane0 = Vector512.Create(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
    private static readonly Vector512<int> s_lane1 = s_lane0 + Vector512<int>.One;
    private static readonly Vector512<int> s_lane2 = s_lane1 + Vector512<int>.One;
    private static readonly Vector512<int> s_lane3 = s_lane2 + Vector512<int>.One;

    /// <summary>Block b of four Q4_0 rows (code pointers, past each block's scale): int32 lanes 4r..4r+3 hold row r's
    /// partial sums of c·x, as floats. Byte j of a block holds element j (low nibble) and j+16 (high nibble).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Quad4(byte* r0, byte* r1, byte* r2, byte* r3, int b, sbyte* xq)
    {
        nint o = b * 18;
        var c = Vector512.Create(Vector256.Create(Vector128.Load(r0 + o), Vector128.Load(r1 + o)),
            Vector256.Create(Vector128.Load(r2 + o), Vector128.Load(r3 + o)));
        var mask = Vector512.Create((byte)0x0F);
        var lo = c & mask;
        var hi = Vector512.ShiftRightLogical(c.AsUInt16(), 4).AsByte() & mask;
        var xl = Vector512.Create(Vector128.Load(xq + b * Block));
        var xh = Vector512.Create(Vector128.Load(xq + b * Block + 16));
        var p16 = Avx512BW.MultiplyAddAdjacent(lo, xl) + Avx512BW.MultiplyAddAdjacent(hi, xh);
        return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1)));
    }

    /// <summary>Blocks b and b+1 (b+1 only when <paramref name="two"/>; its lanes are zero otherwise): int32 lanes
    /// 0..7 hold block b's partial sums of c·x, lanes 8..15 block b+1's, as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PairQ4(byte* row, int b, sbyte* xq, bool two)
    {
        byte* p = row + b * 18 + 2;
        var c = Vector256.Create(Vector128.Load(p), two ? Vector128.Load(p + 18) : Vector128<byte>.Zero);
        // 128-bit lanes [b lo, b+1 lo, b hi, b+1 hi] → [b lo, b hi, b+1 lo, b+1 hi]: x's element order.
        var nib = Vector512.Create(c, Vector256.ShiftRightLogical(c.AsUInt16(), 4).AsByte()) & Vector512.Create((byte)0x0F);
        nib = Avx512F.Shuffle4x128(nib.AsUInt64(), nib.AsUInt64(), 0b11_01_10_00).AsByte();
        var x = two ? Vector512.Load(xq + b * Block) : Vector256.Load(xq + b * Block).ToVector512();
        var p16 = Avx512BW.MultiplyAddAdjacent(nib, x);
        return Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(p16, Vector512.Create((short)1)));
    }

    /// <summary>[dw[b]·dx[b] ×8, dw[b+1]·dx[b+1] ×8] (both buffers padded, so b+1 may be a padding block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PairScales(float* dw, float* dx, int b)
    {
        var s = Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<double>(dw + b)).AsSingle()
              * Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<double>(dx + b)).AsSingle();
        return Avx512F.PermuteVar16x32(s.ToVector256Unsafe().ToVector512Unsafe(), Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    }
}
