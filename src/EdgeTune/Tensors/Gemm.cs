using System.Numerics;
using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors;

/// <summary>
/// Matrix products in the three layouts training needs. All matrices are row-major and contiguous.
/// A and C are F32; B may be F32, F16 (<see cref="Half"/>) or BF16 (raw <see cref="ushort"/>),
/// widened to F32 as it is read. With <c>accumulate</c> the product is added to C (backward
/// passes accumulate gradients); otherwise C is overwritten.
/// </summary>
/// <remarks>Shape legend: M rows of the output, K the reduced dimension, N columns of the output.</remarks>
public static partial class Gemm
{
    /// <summary>C[M,N] (+)= A[M,K] · B[N,K]ᵀ — forward through a weight stored [out, in].</summary>
    public static void ABt<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
    {
        Check("Gemm.ABt", a.Length, b.Length, c.Length, m, k, n, (long)n * k);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * Widen(b[j * k + p]);
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    /// <summary>C[M,N] (+)= A[M,K] · B[K,N] — gradient w.r.t. the input of a linear layer.</summary>
    public static void AB<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
    {
        Check("Gemm.AB", a.Length, b.Length, c.Length, m, k, n, (long)k * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[i * k + p] * Widen(b[p * n + j]);
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    /// <summary>C[M,N] (+)= A[K,M]ᵀ · B[K,N] — gradient w.r.t. the weight of a linear layer.</summary>
    public static void AtB<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
    {
        Check("Gemm.AtB", a.Length, b.Length, c.Length, m, k, n, (long)k * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[p * m + i] * Widen(b[p * n + j]);
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    /// <summary>Reads one B element as float: F32 as is, F16 widened, BF16 (ushort bits) widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Widen<TB>(TB v) where TB : unmanaged
    {
        if (typeof(TB) == typeof(float)) return Unsafe.As<TB, float>(ref v);
        if (typeof(TB) == typeof(Half)) return (float)Unsafe.As<TB, Half>(ref v);
        if (typeof(TB) == typeof(ushort)) return BFloat16.ToSingle(Unsafe.As<TB, ushort>(ref v));
        throw new NotSupportedException($"Gemm: B of type {typeof(TB).Name} is not supported (F32, F16, BF16)");
    }

    internal static void Check(string op, int aLen, int bLen, int cLen, int m, int k, int n, long bNeeded)
    {
        ShapeException.RequireNonNegative(op, "M", m);
        ShapeException.RequireNonNegative(op, "K", k);
        ShapeException.RequireNonNegative(op, "N", n);
        string dims = $" (M={m}, K={k}, N={n})";
        if (aLen < (long)m * k) throw new ShapeException($"{op}: A has {aLen} elements, needs {(long)m * k}{dims}");
        if (bLen < bNeeded) throw new ShapeException($"{op}: B has {bLen} elements, needs {bNeeded}{dims}");
        if (cLen < (long)m * n) throw new ShapeException($"{op}: C has {cLen} elements, needs {(long)m * n}{dims}");
    }
}

/// <summary>
/// Plain scalar GEMM references, generic over the element type so gradient checks run them in
/// double precision. Kept forever as the definition the fast paths are tested against.
/// </summary>
public static class GemmReference
{
    public static void ABt<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n, bool accumulate = false)
        where T : INumber<T>
    {
        Gemm.Check("GemmReference.ABt", a.Length, b.Length, c.Length, m, k, n, (long)n * k);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    public static void AB<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n, bool accumulate = false)
        where T : INumber<T>
    {
        Gemm.Check("GemmReference.AB", a.Length, b.Length, c.Length, m, k, n, (long)k * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }

    public static void AtB<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n, bool accumulate = false)
        where T : INumber<T>
    {
        Gemm.Check("GemmReference.AtB", a.Length, b.Length, c.Length, m, k, n, (long)k * n);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                T s = T.Zero;
                for (int p = 0; p < k; p++) s += a[p * m + i] * b[p * n + j];
                c[i * n + j] = accumulate ? c[i * n + j] + s : s;
            }
    }
}
