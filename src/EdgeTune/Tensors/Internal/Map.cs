using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>An elementwise function of one float, in scalar and vector form (the two must agree).</summary>
internal interface IUnaryOp
{
    float Apply(float x);
    TV Apply<TV>(TV x) where TV : struct, IVec<TV>;
}

/// <summary>An elementwise function of two floats, in scalar and vector form.</summary>
internal interface IBinaryOp
{
    float Apply(float a, float b);
    TV Apply<TV>(TV a, TV b) where TV : struct, IVec<TV>;
}

/// <summary>An elementwise function of three floats, in scalar and vector form (backward passes:
/// the third operand is usually the gradient being accumulated into).</summary>
internal interface ITernaryOp
{
    float Apply(float a, float b, float c);
    TV Apply<TV>(TV a, TV b, TV c) where TV : struct, IVec<TV>;
}

/// <summary>
/// Width-generic loops that apply an op struct over spans: full vectors first, then a scalar tail
/// with the op's scalar form. The output may be the very same span as an input (in place); partial
/// overlap is not supported. Callers check lengths; the cores re-check the output length so they
/// never write outside a buffer.
/// </summary>
internal static class Map
{
    public static void Unary<TOp>(ReadOnlySpan<float> x, Span<float> y, TOp op) where TOp : struct, IUnaryOp
    {
        switch (Simd.Width)
        {
            case SimdWidth.V512: Unary<V512, TOp>(x, y, op); break;
            case SimdWidth.V256: Unary<V256, TOp>(x, y, op); break;
            default: Unary<V128, TOp>(x, y, op); break;
        }
    }

    public static void Binary<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, TOp op) where TOp : struct, IBinaryOp
    {
        switch (Simd.Width)
        {
            case SimdWidth.V512: Binary<V512, TOp>(a, b, y, op); break;
            case SimdWidth.V256: Binary<V256, TOp>(a, b, y, op); break;
            default: Binary<V128, TOp>(a, b, y, op); break;
        }
    }

    public static void Ternary<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> y, TOp op)
        where TOp : struct, ITernaryOp
    {
        switch (Simd.Width)
        {
            case SimdWidth.V512: Ternary<V512, TOp>(a, b, c, y, op); break;
            case SimdWidth.V256: Ternary<V256, TOp>(a, b, c, y, op); break;
            default: Ternary<V128, TOp>(a, b, c, y, op); break;
        }
    }

    /// <summary>y[i] = op(x[i]) for i &lt; x.Length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unary<TV, TOp>(ReadOnlySpan<float> x, Span<float> y, TOp op)
        where TV : struct, IVec<TV> where TOp : struct, IUnaryOp
    {
        int n = x.Length;
        Require(y.Length, n);
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(op.Apply(TV.Load(in xs, (nuint)i)), ref ys, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref ys, i) = op.Apply(Unsafe.Add(ref xs, i));
    }

    /// <summary>y[i] = op(a[i], b[i]) for i &lt; a.Length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Binary<TV, TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, TOp op)
        where TV : struct, IVec<TV> where TOp : struct, IBinaryOp
    {
        int n = a.Length;
        Require(b.Length, n);
        Require(y.Length, n);
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(op.Apply(TV.Load(in pa, (nuint)i), TV.Load(in pb, (nuint)i)), ref py, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref py, i) = op.Apply(Unsafe.Add(ref pa, i), Unsafe.Add(ref pb, i));
    }

    /// <summary>y[i] = op(a[i], b[i], c[i]) for i &lt; a.Length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Ternary<TV, TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> y, TOp op)
        where TV : struct, IVec<TV> where TOp : struct, ITernaryOp
    {
        int n = a.Length;
        Require(b.Length, n);
        Require(c.Length, n);
        Require(y.Length, n);
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        ref float pc = ref MemoryMarshal.GetReference(c);
        ref float py = ref MemoryMarshal.GetReference(y);
        int i = 0;
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(op.Apply(TV.Load(in pa, (nuint)i), TV.Load(in pb, (nuint)i), TV.Load(in pc, (nuint)i)), ref py, (nuint)i);
        for (; i < n; i++)
            Unsafe.Add(ref py, i) = op.Apply(Unsafe.Add(ref pa, i), Unsafe.Add(ref pb, i), Unsafe.Add(ref pc, i));
    }

    private static void Require(int actual, int needed)
    {
        if (actual < needed) throw new ShapeException($"Map: a span has {actual} elements, needs {needed}");
    }
}
