using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeTune.Tensors.Quantized.Internal;

/// <summary>Which integer dot implementation runs (tests force each one that the machine has).</summary>
internal enum IntDotPath { Auto, Avx512, Avx2, Vector128, Scalar }

/// <summary>
/// Integer block dot products of a quantized weight row (Q8_0, Q4_0, Int8) against an activation row
/// quantized to Q8 blocks of 32. A block's 32 products are summed exactly in int32, then scaled by
/// d_w·d_x into a float accumulator. AVX2: |w| (u8) × sign-transferred x (s8) pairs summed to int16
/// (no overflow: 2·128·127 &lt; 2¹⁵), then pairs of int16 to int32. Vector128 (SSE on x64, NEON on
/// ARM64): widened int16 products summed to int32. Scalar: plain loops. AVX-512 (Q8_0, Q4_0, driven
/// by <see cref="QuantGemv"/> with per-row widened scales): QuantIntDot.Avx512.cs.
/// </summary>
internal static unsafe partial class QuantIntDot
{
    public const int Block = 32;

    public static IntDotPath Best { get; } =
        Avx512BW.IsSupported ? IntDotPath.Avx512 : Avx2.IsSupported ? IntDotPath.Avx2 : Vector128.IsHardwareAccelerated ? IntDotPath.Vector128 : IntDotPath.Scalar;

    /// <summary>Q8 blocks of an activation row: d = amax/127 (f32), q = round(x/d), ties away from zero. With 256-bit
    /// vectors, four registers a block; the result is bit for bit <see cref="QuantizeActivationScalar"/>'s (the rounding
    /// is done as that reference does it: truncate, then one step away from zero when the dropped fraction is ≥ ½).</summary>
    public static void QuantizeActivation(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales)
    {
        int blocks = x.Length / Block;
        if (!Vector256.IsHardwareAccelerated || q.Length < blocks * Block || scales.Length < blocks)
        {
            QuantizeActivationScalar(x, q, scales);
            return;
        }
        fixed (float* px = x)
        fixed (sbyte* pq = q)
            for (int b = 0; b < blocks; b++)
            {
                float* v = px + b * Block;
                var v0 = Vector256.Load(v); var v1 = Vector256.Load(v + 8); var v2 = Vector256.Load(v + 16); var v3 = Vector256.Load(v + 24);
                var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
                // The lane maximum as the reference takes it (MathF.Max: a NaN anywhere makes the scale NaN, its codes 0).
                float amax = 0;
                for (int i = 0; i < 8; i++) amax = MathF.Max(amax, m.GetElement(i));
                if (float.IsNaN(amax))
                {
                    QuantizeActivationScalar(x.Slice(b * Block, Block), q.Slice(b * Block, Block), scales.Slice(b, 1));
                    continue;
                }
                float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
                scales[b] = d;
                var vid = Vector256.Create(id);
                var lo = Vector256.Narrow(RoundAway(v0 * vid), RoundAway(v1 * vid));
                var hi = Vector256.Narrow(RoundAway(v2 * vid), RoundAway(v3 * vid));
                Vector256.Narrow(lo, hi).Store(pq + b * Block);
            }
    }

    /// <summary>round(y) with ties away from zero, as int32 (|y| ≤ 127 here, so every step is exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RoundAway(Vector256<float> y)
    {
        var t = Vector256.Truncate(y);
        var away = Vector256.GreaterThanOrEqual(Vector256.Abs(y - t), Vector256.Create(0.5f));
        var step = (y & Vector256.Create(-0f)) | Vector256.Create(1f);   // ±1 with y's sign
        return Vector256.ConvertToInt32(t + (step & away));
    }

    /// <summary>The scalar reference of <see cref="QuantizeActivation"/>.</summary>
    public static void QuantizeActivationScalar(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales)
    {
        for (int b = 0; b < x.Length / Block; b++)
        {
            var v = x.Slice(b * Block, Block);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            scales[b] = d;
            for (int j = 0; j < Block; j++) q[b * Block + j] = (sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>Σ_b d_w(b)·d_x(b)·Σ_j q_w·q_x over the row's blocks (Int8: one d_w for the row).</summary>
    public static float Dot(QuantFormat format, byte* row, int cols, sbyte* xq, float* xs, IntDotPath path)
    {
        // (Avx512 is served by QuantGemv's own kernels for Q8_0/Q4_0; here, and for Int8, it means the AVX2 dot.)
        bool avx2 = path is IntDotPath.Avx2 or IntDotPath.Avx512 && Avx2.IsSupported, v128 = !avx2 && path != IntDotPath.Scalar;
        return format switch
        {
            QuantFormat.Q8_0 => avx2 ? DotAvx2<Q8Codes>(row, cols, xq, xs) : v128 ? DotV128<Q8Codes>(row, cols, xq, xs) : DotScalar<Q8Codes>(row, cols, xq, xs),
            QuantFormat.Q4_0 => avx2 ? DotAvx2<Q4Codes>(row, cols, xq, xs) : v128 ? DotV128<Q4Codes>(row, cols, xq, xs) : DotScalar<Q4Codes>(row, cols, xq, xs),
            QuantFormat.Int8 => Unsafe.ReadUnaligned<float>(row) *
                (avx2 ? DotAvx2<I8Codes>(row, cols, xq, xs) : v128 ? DotV128<I8Codes>(row, cols, xq, xs) : DotScalar<I8Codes>(row, cols, xq, xs)),
            _ => throw new ArgumentOutOfRangeException(nameof(format), format, "integer dot: Q8_0, Q4_0 or Int8"),
        };
    }

    /// <summary>Where one format keeps block b's 32 signed codes and its scale.</summary>
    private interface ICodes
    {
        /// <summary>The 32 codes as two 16-lane halves (elements 0..15, 16..31).</summary>
        static abstract (Vector128<sbyte> Lo, Vector128<sbyte> Hi) Codes(byte* row, int b);
        /// <summary>Block scale (Int8: 1; its row scale is applied once at the end).</summary>
        static abstract float Scale(byte* row, int b);
    }

    private readonly struct Q8Codes : ICodes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector128<sbyte> Lo, Vector128<sbyte> Hi) Codes(byte* row, int b) =>
            (Vector128.Load((sbyte*)(row + b * 34 + 2)), Vector128.Load((sbyte*)(row + b * 34 + 18)));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* row, int b) => QuantWiden.Half(row + b * 34);
    }

    private readonly struct Q4Codes : ICodes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector128<sbyte> Lo, Vector128<sbyte> Hi) Codes(byte* row, int b)
        {
            var q = Vector128.Load(row + b * 18 + 2);
            return (QuantWiden.LowNibbles(q), QuantWiden.HighNibbles(q));
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* row, int b) => QuantWiden.Half(row + b * 18);
    }

    private readonly struct I8Codes : ICodes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector128<sbyte> Lo, Vector128<sbyte> Hi) Codes(byte* row, int b) =>
            (Vector128.Load((sbyte*)(row + 4 + b * Block)), Vector128.Load((sbyte*)(row + 4 + b * Block + 16)));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Scale(byte* row, int b) => 1f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockAvx2<TC>(byte* row, int b, sbyte* xq, float* xs) where TC : struct, ICodes
    {
        var (lo, hi) = TC.Codes(row, b);
        var w = Vector256.Create(lo, hi);
        var x = Avx.LoadVector256(xq + b * Block);
        var p16 = Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w));
        var p32 = Avx2.MultiplyAddAdjacent(p16, Vector256.Create((short)1));
        return Avx.ConvertToVector256Single(p32);
    }

    private static float DotAvx2<TC>(byte* row, int cols, sbyte* xq, float* xs) where TC : struct, ICodes
    {
        // Two accumulators: consecutive blocks do not wait on each other's multiply-add.
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int nb = cols / Block, b = 0;
        for (; b + 2 <= nb; b += 2)
        {
            acc0 = MulAdd(BlockAvx2<TC>(row, b, xq, xs), Vector256.Create(TC.Scale(row, b) * xs[b]), acc0);
            acc1 = MulAdd(BlockAvx2<TC>(row, b + 1, xq, xs), Vector256.Create(TC.Scale(row, b + 1) * xs[b + 1]), acc1);
        }
        if (b < nb) acc0 = MulAdd(BlockAvx2<TC>(row, b, xq, xs), Vector256.Create(TC.Scale(row, b) * xs[b]), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c) : a * b + c;

    private static float DotV128<TC>(byte* row, int cols, sbyte* xq, float* xs) where TC : struct, ICodes
    {
        var acc = Vector128<float>.Zero;
        for (int b = 0; b < cols / Block; b++)
        {
            var (lo, hi) = TC.Codes(row, b);
            var s = Products(lo, Vector128.Load(xq + b * Block)) + Products(hi, Vector128.Load(xq + b * Block + 16));
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s), Vector128.Create(TC.Scale(row, b) * xs[b]), acc);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>16 products w·x, summed by fours into int32 lanes (|w·x| ≤ 128·127 fits int16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Products(Vector128<sbyte> w, Vector128<sbyte> x)
    {
        var (w0, w1) = Vector128.Widen(w);
        var (x0, x1) = Vector128.Widen(x);
        var (a, b) = Vector128.Widen(w0 * x0);
        var (c, d) = Vector128.Widen(w1 * x1);
        return a + b + c + d;
    }

    private static float DotScalar<TC>(byte* row, int cols, sbyte* xq, float* xs) where TC : struct, ICodes
    {
        float sum = 0;
        for (int b = 0; b < cols / Block; b++)
        {
            var (lo, hi) = TC.Codes(row, b);
            int s = 0;
            for (int j = 0; j < 16; j++) s += lo.GetElement(j) * xq[b * Block + j] + hi.GetElement(j) * xq[b * Block + 16 + j];
            sum += s * (TC.Scale(row, b) * xs[b]);
        }
        return sum;
    }
}
