using System.Numerics;
using System.Runtime.CompilerServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Matrix products in the three layouts training needs. All matrices are row-major and contiguous.
/// A and C are F32; B may be F32, F16 (<see cref="Half"/>) or BF16 (raw <see cref="ushort"/>),
/// widened to F32 as it is read. With <c>accumulate</c> the product is added to C (backward
/// passes accumulate gradients); otherwise C is overwritten.
/// </summary>
/// <remarks>Shape legend: M rows of the output, K the reduced dimension, N columns of the output.</remarks>
public static unsafe partial class Gemm
{
    /// <summary>C[M,N] (+)= A[M,K] · B[N,K]ᵀ — forward through a weight stored [out, in].</summary>
    public static void ABt<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
        => Compute<TB>(GemmLayout.ABt, a, b, c, m, k, n, accumulate, Simd.Width, WorkerPool.Shared.Threads, 0);

    /// <summary>C[M,N] (+)= A[M,K] · B[K,N] — gradient w.r.t. the input of a linear layer.</summary>
    public static void AB<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
        => Compute<TB>(GemmLayout.AB, a, b, c, m, k, n, accumulate, Simd.Width, WorkerPool.Shared.Threads, 0);

    /// <summary>C[M,N] (+)= A[K,M]ᵀ · B[K,N] — gradient w.r.t. the weight of a linear layer.</summary>
    public static void AtB<TB>(ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c, int m, int k, int n, bool accumulate = false)
        where TB : unmanaged
        => Compute<TB>(GemmLayout.AtB, a, b, c, m, k, n, accumulate, Simd.Width, WorkerPool.Shared.Threads, 0);

    /// <summary>
    /// The one entry behind the three layouts, with the width, thread count and kernel rows explicit
    /// (tests and benchmarks drive every combination; <paramref name="kernelRows"/> 0 = automatic,
    /// or 6, 12, 14 to force the packed path with that micro-kernel).
    /// </summary>
    internal static void Compute<TB>(GemmLayout layout, ReadOnlySpan<float> a, ReadOnlySpan<TB> b, Span<float> c,
        int m, int k, int n, bool accumulate, SimdWidth width, int threads, int kernelRows, GemmBlocking? blocking = null)
        where TB : unmanaged
    {
        string op = layout switch { GemmLayout.ABt => "Gemm.ABt", GemmLayout.AB => "Gemm.AB", _ => "Gemm.AtB" };
        if (typeof(TB) != typeof(float) && typeof(TB) != typeof(Half) && typeof(TB) != typeof(ushort))
            throw new NotSupportedException($"{op}: B of type {typeof(TB).Name} is not supported (F32 float, F16 Half, BF16 ushort)");
        Check(op, a.Length, b.Length, c.Length, m, k, n, (long)n * k);
        if (m == 0 || n == 0) return;
        // A(i,p) = a[i*rsA + p*csA]; B(p,j) = b[p*rsB + j*csB].
        nint rsA = layout == GemmLayout.AtB ? 1 : k, csA = layout == GemmLayout.AtB ? m : 1;
        nint rsB = layout == GemmLayout.ABt ? 1 : n, csB = layout == GemmLayout.ABt ? k : 1;
        fixed (float* pa = a)
        fixed (TB* pb = b)
        fixed (float* pc = c)
        {
            switch (width)
            {
                case SimdWidth.V512: Run<V512, TB>(pa, rsA, csA, pb, rsB, csB, pc, m, k, n, accumulate, threads, kernelRows, blocking); break;
                case SimdWidth.V256: Run<V256, TB>(pa, rsA, csA, pb, rsB, csB, pc, m, k, n, accumulate, threads, kernelRows, blocking); break;
                case SimdWidth.V128: Run<V128, TB>(pa, rsA, csA, pb, rsB, csB, pc, m, k, n, accumulate, threads, kernelRows, blocking); break;
                default: Scalar(pa, rsA, csA, pb, rsB, csB, pc, m, k, n, accumulate); break;
            }
        }
    }

    private static void Run<TV, TB>(float* a, nint rsA, nint csA, TB* b, nint rsB, nint csB, float* c,
        int m, int k, int n, bool accumulate, int threads, int kernelRows, GemmBlocking? blocking)
        where TV : struct, IVec<TV>
        where TB : unmanaged
    {
        if (!TV.IsAccelerated)
        {
            Scalar(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate);
            return;
        }
        switch (kernelRows)
        {
            case 0: GemmDriver.Run<TV, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking); break;
            case 6: GemmDriver.Packed<TV, Rows6, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking); break;
            case 12: GemmDriver.Packed<TV, Rows12, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking); break;
            case 14: GemmDriver.Packed<TV, Rows14, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking); break;
            default: throw new ArgumentOutOfRangeException(nameof(kernelRows), kernelRows, "kernel rows: 0, 6, 12 or 14");
        }
    }

    /// <summary>Plain loops, for machines without SIMD.</summary>
    private static void Scalar<TB>(float* a, nint rsA, nint csA, TB* b, nint rsB, nint csB, float* c,
        int m, int k, int n, bool accumulate)
        where TB : unmanaged
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[i * rsA + p * csA] * Widen(b[p * rsB + j * csB]);
                float* d = c + (nint)i * n + j;
                *d = accumulate ? *d + s : s;
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
        // The message is built only on failure: a decode step calls this hundreds of times and allocates nothing.
        string Dims() => $" (M={m}, K={k}, N={n})";
        if (aLen < (long)m * k) throw new ShapeException($"{op}: A has {aLen} elements, needs {(long)m * k}{Dims()}");
        if (bLen < bNeeded) throw new ShapeException($"{op}: B has {bLen} elements, needs {bNeeded}{Dims()}");
        if (cLen < (long)m * n) throw new ShapeException($"{op}: C has {cLen} elements, needs {(long)m * n}{Dims()}");
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

/// <summary>Which operand is transposed in a product.</summary>
internal enum GemmLayout { ABt, AB, AtB }
