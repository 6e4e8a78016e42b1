using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Rotary position embedding over x [T, H, D]: in each head the first R = table.RotaryDim channels
/// are rotated pairwise by θ_i = pos·invFreq[i] (pairing per <see cref="RopeStyle"/>); channels
/// R..D−1 pass through unchanged (partial rotary). Row t has position pos0 + t, or positions[t].
/// Forward rotates in place; backward ACCUMULATES the inverse rotation: dx += R(−θ)·dy (dx must
/// not overlap dy; pass-through channels get dx += dy). Vectorized at <see cref="Simd.Width"/>.
/// </summary>
public static class Rope
{
    /// <summary>x: [T, H, D], rotated in place for positions pos0..pos0+T−1.</summary>
    public static void Forward(Span<float> x, int t, int h, int d, int pos0, RopeTable table, RopeStyle style)
        => Dispatch("Rope.Forward", x, x, t, h, d, pos0, default, table, style, backward: false);

    /// <summary>x: [T, H, D], rotated in place; positions: [T].</summary>
    public static void Forward(Span<float> x, int t, int h, int d, ReadOnlySpan<int> positions, RopeTable table, RopeStyle style)
        => Dispatch("Rope.Forward", x, x, t, h, d, 0, Positions("Rope.Forward", positions, t), table, style, backward: false);

    /// <summary>dx += R(−θ)·dy; dy, dx: [T, H, D]; positions pos0..pos0+T−1.</summary>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, int t, int h, int d, int pos0, RopeTable table, RopeStyle style)
        => Dispatch("Rope.Backward", dy, dx, t, h, d, pos0, default, table, style, backward: true);

    /// <summary>dx += R(−θ)·dy; dy, dx: [T, H, D]; positions: [T].</summary>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, int t, int h, int d, ReadOnlySpan<int> positions, RopeTable table, RopeStyle style)
        => Dispatch("Rope.Backward", dy, dx, t, h, d, 0, Positions("Rope.Backward", positions, t), table, style, backward: true);

    private static ReadOnlySpan<int> Positions(string op, ReadOnlySpan<int> positions, int t)
    {
        if (positions.Length != t) throw new ShapeException($"{op}: 'positions' has {positions.Length} elements, expected T = {t}");
        return positions;
    }

    private static void Dispatch(string op, ReadOnlySpan<float> src, Span<float> dst, int t, int h, int d, int pos0,
        ReadOnlySpan<int> positions, RopeTable table, RopeStyle style, bool backward)
    {
        ArgumentNullException.ThrowIfNull(table);
        Check(op, src.Length, dst.Length, backward, t, h, d, table, style);
        if (t == 0 || h == 0) return;
        bool explicitPositions = positions.Length == t;
        for (int i = 0; i < t; i++)
        {
            int p = explicitPositions ? positions[i] : pos0 + i;
            if ((uint)p >= (uint)table.MaxPositions)
                throw new ArgumentOutOfRangeException(nameof(positions), p,
                    $"{op}: position {p} of row t={i} is outside the table's 0..{table.MaxPositions - 1}");
        }
        switch (Simd.Width)
        {
            case SimdWidth.V512: Core<V512>(src, dst, t, h, d, pos0, positions, table, style, backward); break;
            case SimdWidth.V256: Core<V256>(src, dst, t, h, d, pos0, positions, table, style, backward); break;
            case SimdWidth.V128: Core<V128>(src, dst, t, h, d, pos0, positions, table, style, backward); break;
            default: Core<V128>(src, dst, t, h, d, pos0, positions, table, style, backward, useVectors: false); break;
        }
    }

    private static void Check(string op, int srcLen, int dstLen, bool backward, int t, int h, int d, RopeTable table, RopeStyle style)
    {
        ShapeException.RequireNonNegative(op, "T", t);
        ShapeException.RequireNonNegative(op, "H", h);
        ShapeException.RequireNonNegative(op, "D", d);
        if (style != RopeStyle.Interleaved && style != RopeStyle.HalfSplit)
            throw new ArgumentOutOfRangeException(nameof(style), style, $"{op}: unknown RoPE style");
        if (table.RotaryDim > d)
            throw new ShapeException($"{op}: the table's rotary dim {table.RotaryDim} exceeds the head size D = {d}");
        long need = (long)t * h * d;
        string first = backward ? "dy" : "x";
        if (srcLen != need) throw new ShapeException($"{op}: '{first}' has {srcLen} elements, expected T·H·D = {t}·{h}·{d} = {need}");
        if (backward && dstLen != need) throw new ShapeException($"{op}: 'dx' has {dstLen} elements, expected T·H·D = {t}·{h}·{d} = {need}");
    }

    /// <summary>
    /// The rotation for every width (positions already validated; lengths = T·H·D). Forward:
    /// dst = R(θ)·src (src may be dst). Backward: dst += R(−θ)·src. Without useVectors it runs the
    /// scalar pair loop only (the <see cref="SimdWidth.Scalar"/> path).
    /// </summary>
    internal static void Core<TV>(ReadOnlySpan<float> src, Span<float> dst, int t, int h, int d, int pos0,
        ReadOnlySpan<int> positions, RopeTable table, RopeStyle style, bool backward, bool useVectors = true) where TV : struct, IVec<TV>
    {
        long need = (long)t * h * d;
        if (src.Length < need || dst.Length < need) throw new ShapeException($"Rope: a span is shorter than T·H·D = {need}");
        int rot = table.RotaryDim, half = rot / 2, w = TV.Count;
        float sign = backward ? -1f : 1f;
        bool vector = useVectors;
        ref float ps = ref MemoryMarshal.GetReference(src);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        // interleaved: cos, then signed sin, per channel of the current position
        Span<float> expanded = rot <= 512 ? stackalloc float[2 * rot] : new float[2 * rot];
        ref float pc = ref MemoryMarshal.GetReference(expanded);
        ref float psn = ref Unsafe.Add(ref pc, rot);
        TV even = TV.Load(in EvenMask[0], 0);
        for (int ti = 0; ti < t; ti++)
        {
            int pos = positions.Length == t ? positions[ti] : pos0 + ti;
            ReadOnlySpan<float> cos = table.Cos(pos), sin = table.Sin(pos);
            if (style == RopeStyle.Interleaved)
                for (int i = 0; i < half; i++)
                {
                    expanded[2 * i] = expanded[2 * i + 1] = cos[i];
                    expanded[rot + 2 * i] = -sign * sin[i];
                    expanded[rot + 2 * i + 1] = sign * sin[i];
                }
            ref float rc = ref MemoryMarshal.GetReference(cos);
            ref float rs = ref MemoryMarshal.GetReference(sin);
            TV vsign = TV.Broadcast(sign);
            for (int hh = 0; hh < h; hh++)
            {
                int b = (ti * h + hh) * d, i = 0;
                if (style == RopeStyle.HalfSplit)
                {
                    if (vector)
                        for (; i <= half - w; i += w)
                        {
                            nuint o1 = (nuint)(b + i), o2 = (nuint)(b + half + i);
                            TV c = TV.Load(in rc, (nuint)i), s = TV.Mul(vsign, TV.Load(in rs, (nuint)i));
                            TV x1 = TV.Load(in ps, o1), x2 = TV.Load(in ps, o2);
                            TV y1 = TV.Fma(x2, TV.Neg(s), TV.Mul(x1, c));
                            TV y2 = TV.Fma(x1, s, TV.Mul(x2, c));
                            if (backward) { y1 = TV.Add(y1, TV.Load(in pd, o1)); y2 = TV.Add(y2, TV.Load(in pd, o2)); }
                            TV.Store(y1, ref pd, o1);
                            TV.Store(y2, ref pd, o2);
                        }
                    for (; i < half; i++)
                        Pair(ref ps, ref pd, b + i, b + half + i, Unsafe.Add(ref rc, i), sign * Unsafe.Add(ref rs, i), backward);
                }
                else
                {
                    if (vector)
                        for (; i <= rot - w; i += w)
                        {
                            int a = b + i;
                            if (a < 1 || (long)a + w + 1 > need) { ScalarPairs(ref ps, ref pd, b, i, i + w, ref rc, ref rs, sign, backward); continue; }
                            // swapped[j] = x[j+1] for even j, x[j−1] for odd j; stale lanes of an in-place run are never selected
                            TV x = TV.Load(in ps, (nuint)a);
                            TV sw = TV.Select(even, TV.Load(in ps, (nuint)(a + 1)), TV.Load(in ps, (nuint)(a - 1)));
                            TV y = TV.Fma(sw, TV.Load(in psn, (nuint)i), TV.Mul(x, TV.Load(in pc, (nuint)i)));
                            if (backward) y = TV.Add(y, TV.Load(in pd, (nuint)a));
                            TV.Store(y, ref pd, (nuint)a);
                        }
                    ScalarPairs(ref ps, ref pd, b, i, rot, ref rc, ref rs, sign, backward);
                }
                if (backward)
                    for (int c = rot; c < d; c++) Unsafe.Add(ref pd, b + c) += Unsafe.Add(ref ps, b + c);
            }
        }
    }

    /// <summary>Interleaved pairs for channels [from, to) of the head at b (from, to even).</summary>
    private static void ScalarPairs(ref float ps, ref float pd, int b, int from, int to, ref float rc, ref float rs, float sign, bool backward)
    {
        for (int i = from; i < to; i += 2)
            Pair(ref ps, ref pd, b + i, b + i + 1, Unsafe.Add(ref rc, i / 2), sign * Unsafe.Add(ref rs, i / 2), backward);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(ref float ps, ref float pd, int ia, int ib, float c, float s, bool accumulate)
    {
        float a = Unsafe.Add(ref ps, ia), b = Unsafe.Add(ref ps, ib);
        float ya = MathF.FusedMultiplyAdd(b, -s, a * c), yb = MathF.FusedMultiplyAdd(a, s, b * c);
        if (accumulate) { Unsafe.Add(ref pd, ia) += ya; Unsafe.Add(ref pd, ib) += yb; }
        else { Unsafe.Add(ref pd, ia) = ya; Unsafe.Add(ref pd, ib) = yb; }
    }

    /// <summary>All bits set in even lanes: selects the right neighbour for even channels.</summary>
    private static readonly float[] EvenMask = BuildEvenMask();

    private static float[] BuildEvenMask()
    {
        var m = new float[16];
        for (int i = 0; i < m.Length; i += 2) m[i] = BitConverter.Int32BitsToSingle(-1);
        return m;
    }
}

/// <summary>Plain scalar definition of <see cref="Rope"/>, generic over the element type; the
/// angles pos·invFreq[i] and their cos/sin are computed in T on every call.</summary>
public static class RopeReference
{
    /// <summary>x: [T, H, D] rotated in place by θ_i = positions[t]·invFreq[i]; R = 2·invFreq.Length ≤ D.</summary>
    public static void Forward<T>(Span<T> x, int t, int h, int d, ReadOnlySpan<int> positions, ReadOnlySpan<T> inverseFrequencies, RopeStyle style)
        where T : IFloatingPointIeee754<T>
        => Rotate(x, x, t, h, d, positions, inverseFrequencies, style, backward: false);

    /// <summary>dx += R(−θ)·dy; dy, dx: [T, H, D].</summary>
    public static void Backward<T>(ReadOnlySpan<T> dy, Span<T> dx, int t, int h, int d, ReadOnlySpan<int> positions, ReadOnlySpan<T> inverseFrequencies, RopeStyle style)
        where T : IFloatingPointIeee754<T>
        => Rotate(dy, dx, t, h, d, positions, inverseFrequencies, style, backward: true);

    private static void Rotate<T>(ReadOnlySpan<T> src, Span<T> dst, int t, int h, int d, ReadOnlySpan<int> positions,
        ReadOnlySpan<T> invFreq, RopeStyle style, bool backward) where T : IFloatingPointIeee754<T>
    {
        int half = invFreq.Length, rot = 2 * half;
        if (rot > d) throw new ShapeException($"RopeReference: rotary dim {rot} exceeds the head size D = {d}");
        for (int ti = 0; ti < t; ti++)
            for (int hh = 0; hh < h; hh++)
            {
                int b = (ti * h + hh) * d;
                for (int i = 0; i < half; i++)
                {
                    T angle = T.CreateTruncating(positions[ti]) * invFreq[i];
                    T c = T.Cos(angle), s = backward ? -T.Sin(angle) : T.Sin(angle);
                    int ia = style == RopeStyle.Interleaved ? b + 2 * i : b + i;
                    int ib = style == RopeStyle.Interleaved ? b + 2 * i + 1 : b + half + i;
                    T xa = src[ia], xb = src[ib];
                    T ya = xa * c - xb * s, yb = xb * c + xa * s;
                    if (backward) { dst[ia] += ya; dst[ib] += yb; }
                    else { dst[ia] = ya; dst[ib] = yb; }
                }
                if (backward)
                    for (int c = rot; c < d; c++) dst[b + c] += src[b + c];
            }
    }
}
