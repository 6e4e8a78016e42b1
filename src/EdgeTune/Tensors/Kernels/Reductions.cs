using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Reductions over float spans (vectorized at <see cref="Simd.Width"/>; <see cref="SimdWidth.Scalar"/>
/// runs <see cref="ReductionsReference"/>). Sums are accumulated in float vector lanes over blocks of
/// <see cref="Block"/> elements and the block sums in double, so long vectors (global gradient norms
/// over millions of parameters) keep about double accuracy per block boundary and float accuracy within.
/// </summary>
public static class Reductions
{
    /// <summary>Elements summed in float lanes before the partial sum is moved into a double.</summary>
    internal const int Block = 1024;

    /// <summary>Σ x (0 for an empty span).</summary>
    public static double Sum(ReadOnlySpan<float> x) => Simd.Width switch
    {
        SimdWidth.V512 => SumCore<V512>(x),
        SimdWidth.V256 => SumCore<V256>(x),
        SimdWidth.V128 => SumCore<V128>(x),
        _ => ReductionsReference.Sum(x),
    };

    /// <summary>max x (−∞ for an empty span).</summary>
    public static float Max(ReadOnlySpan<float> x) => Simd.Width switch
    {
        SimdWidth.V512 => MaxCore<V512>(x),
        SimdWidth.V256 => MaxCore<V256>(x),
        SimdWidth.V128 => MaxCore<V128>(x),
        _ => ReductionsReference.Max(x),
    };

    /// <summary>Σ x² (for norms and global-norm clipping).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x) => Dot(x, x);

    /// <summary>Σ a⊙b; a and b have the same length.</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Elementwise.Same("Reductions.Dot", a.Length, b.Length, "a", "b");
        return Simd.Width switch
        {
            SimdWidth.V512 => DotCore<V512>(a, b),
            SimdWidth.V256 => DotCore<V256>(a, b),
            SimdWidth.V128 => DotCore<V128>(a, b),
            _ => ReductionsReference.Dot(a, b),
        };
    }

    /// <summary>sums[r] = Σ_c x[r, c] for x [R, C]; sums [R] is overwritten.</summary>
    public static void RowSums(ReadOnlySpan<float> x, Span<float> sums, int rows, int cols)
    {
        const string op = "Reductions.RowSums";
        ShapeException.RequireNonNegative(op, "R", rows);
        ShapeException.RequireNonNegative(op, "C", cols);
        if (x.Length != (long)rows * cols)
            throw new ShapeException($"{op}: 'x' has {x.Length} elements, expected R·C = {rows}·{cols} = {(long)rows * cols}");
        if (sums.Length != rows) throw new ShapeException($"{op}: 'sums' has {sums.Length} elements, expected R = {rows}");
        for (int r = 0; r < rows; r++) sums[r] = (float)Sum(x.Slice(r * cols, cols));
    }

    /// <summary>True when any element is NaN or ±∞.</summary>
    public static bool HasNonFinite(ReadOnlySpan<float> x) => Simd.Width switch
    {
        SimdWidth.V512 => HasNonFiniteCore<V512>(x),
        SimdWidth.V256 => HasNonFiniteCore<V256>(x),
        SimdWidth.V128 => HasNonFiniteCore<V128>(x),
        _ => ReductionsReference.HasNonFinite(x),
    };

    internal static double SumCore<TV>(ReadOnlySpan<float> x) where TV : struct, IVec<TV>
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0, w = TV.Count;
        double total = 0;
        while (i <= n - 4 * w)
        {
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            int end = Math.Min(n - 4 * w, i + Block - 4 * w);
            for (; i <= end; i += 4 * w)
            {
                a0 = TV.Add(a0, TV.Load(in p, (nuint)i));
                a1 = TV.Add(a1, TV.Load(in p, (nuint)(i + w)));
                a2 = TV.Add(a2, TV.Load(in p, (nuint)(i + 2 * w)));
                a3 = TV.Add(a3, TV.Load(in p, (nuint)(i + 3 * w)));
            }
            total += TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
        }
        for (; i < n; i++) total += Unsafe.Add(ref p, i);
        return total;
    }

    internal static double DotCore<TV>(ReadOnlySpan<float> a, ReadOnlySpan<float> b) where TV : struct, IVec<TV>
    {
        int n = a.Length, i = 0, w = TV.Count;
        if (b.Length < n) throw new ShapeException($"Reductions.Dot: 'b' has {b.Length} elements, needs {n}");
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        double total = 0;
        while (i <= n - 4 * w)
        {
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            int end = Math.Min(n - 4 * w, i + Block - 4 * w);
            for (; i <= end; i += 4 * w)
            {
                a0 = TV.Fma(TV.Load(in pa, (nuint)i), TV.Load(in pb, (nuint)i), a0);
                a1 = TV.Fma(TV.Load(in pa, (nuint)(i + w)), TV.Load(in pb, (nuint)(i + w)), a1);
                a2 = TV.Fma(TV.Load(in pa, (nuint)(i + 2 * w)), TV.Load(in pb, (nuint)(i + 2 * w)), a2);
                a3 = TV.Fma(TV.Load(in pa, (nuint)(i + 3 * w)), TV.Load(in pb, (nuint)(i + 3 * w)), a3);
            }
            total += TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
        }
        for (; i < n; i++) total += (double)Unsafe.Add(ref pa, i) * Unsafe.Add(ref pb, i);
        return total;
    }

    internal static float MaxCore<TV>(ReadOnlySpan<float> x) where TV : struct, IVec<TV>
    {
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0, w = TV.Count;
        float m = float.NegativeInfinity;
        if (n >= 2 * w)
        {
            TV m0 = TV.Broadcast(float.NegativeInfinity), m1 = m0;
            for (; i <= n - 2 * w; i += 2 * w)
            {
                m0 = TV.Max(m0, TV.Load(in p, (nuint)i));
                m1 = TV.Max(m1, TV.Load(in p, (nuint)(i + w)));
            }
            m = TV.MaxAcross(TV.Max(m0, m1));
        }
        for (; i < n; i++) m = MathF.Max(m, Unsafe.Add(ref p, i));
        return m;
    }

    internal static bool HasNonFiniteCore<TV>(ReadOnlySpan<float> x) where TV : struct, IVec<TV>
    {
        // x·0 is 0 for finite x and NaN for NaN or ±∞; NaN survives the sum.
        ref float p = ref MemoryMarshal.GetReference(x);
        int n = x.Length, i = 0, w = TV.Count;
        while (i <= n - w)
        {
            TV acc = TV.Zero;
            int end = Math.Min(n - w, i + Block - w);
            for (; i <= end; i += w) acc = TV.Fma(TV.Load(in p, (nuint)i), TV.Zero, acc);
            if (float.IsNaN(TV.Sum(acc))) return true;
        }
        for (; i < n; i++)
            if (!float.IsFinite(Unsafe.Add(ref p, i))) return true;
        return false;
    }
}

/// <summary>Plain scalar definitions of <see cref="Reductions"/>, generic over the element type;
/// sums accumulate in double whatever T is.</summary>
public static class ReductionsReference
{
    public static double Sum<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        double s = 0;
        foreach (T v in x) s += double.CreateTruncating(v);
        return s;
    }

    public static T Max<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        T m = T.NegativeInfinity;
        foreach (T v in x) m = T.Max(m, v);
        return m;
    }

    public static double SumOfSquares<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T> => Dot(x, x);

    public static double Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : IFloatingPointIeee754<T>
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += double.CreateTruncating(a[i]) * double.CreateTruncating(b[i]);
        return s;
    }

    public static void RowSums<T>(ReadOnlySpan<T> x, Span<T> sums, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++) sums[r] = T.CreateTruncating(Sum(x.Slice(r * cols, cols)));
    }

    public static bool HasNonFinite<T>(ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        foreach (T v in x)
            if (!T.IsFinite(v)) return true;
        return false;
    }
}
