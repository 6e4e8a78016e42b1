using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>The row count MR of a micro-kernel, as a compile-time constant the JIT folds.</summary>
internal interface IGemmRows
{
    static abstract int MR { get; }
}

/// <summary>6 rows x 2 vectors = 12 accumulators: fits 16 vector registers (AVX2, SSE).</summary>
internal readonly struct Rows6 : IGemmRows { public static int MR => 6; }

/// <summary>12 rows x 2 vectors = 24 accumulators: fits 32 vector registers (AVX-512, NEON).</summary>
internal readonly struct Rows12 : IGemmRows { public static int MR => 12; }

/// <summary>14 rows x 2 vectors = 28 accumulators: fills 32 vector registers (AVX-512, NEON).</summary>
internal readonly struct Rows14 : IGemmRows { public static int MR => 14; }

/// <summary>
/// The register-blocked GEMM micro-kernel: an MR x NR tile of C (NR = 2 vectors) from a packed A
/// micro-panel (kc steps of MR floats) and a packed B micro-panel (kc steps of NR floats). Each step
/// loads two B vectors, broadcasts MR values of A and issues 2*MR independent FMAs into accumulators
/// held in registers for the whole k loop. Written once over <c>TV</c>; rows beyond
/// MR are removed by the JIT because <c>TR.MR</c> is a constant for each instantiation.
/// </summary>
internal static unsafe class GemmMicroKernel
{
    /// <summary>C[0..MR, 0..NR) (+)= Apanel · Bpanel. <paramref name="ldc"/> is C's row stride in floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile<TV, TR>(nint kc, float* a, float* b, float* c, nint ldc, bool add)
        where TV : struct, IVec<TV>
        where TR : struct, IGemmRows
    {
        TV z = TV.Zero;
        TV c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        TV c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        TV c80 = z, c81 = z, c90 = z, c91 = z, ca0 = z, ca1 = z, cb0 = z, cb1 = z;
        TV cc0 = z, cc1 = z, cd0 = z, cd1 = z;
        nuint w = (nuint)TV.Count;
        int mr = TR.MR;
        for (nint p = 0; p < kc; p++)
        {
            TV b0 = TV.Load(in *b, 0);
            TV b1 = TV.Load(in *b, w);
            TV x0 = TV.Broadcast(a[0]); c00 = TV.Fma(x0, b0, c00); c01 = TV.Fma(x0, b1, c01);
            TV x1 = TV.Broadcast(a[1]); c10 = TV.Fma(x1, b0, c10); c11 = TV.Fma(x1, b1, c11);
            TV x2 = TV.Broadcast(a[2]); c20 = TV.Fma(x2, b0, c20); c21 = TV.Fma(x2, b1, c21);
            TV x3 = TV.Broadcast(a[3]); c30 = TV.Fma(x3, b0, c30); c31 = TV.Fma(x3, b1, c31);
            TV x4 = TV.Broadcast(a[4]); c40 = TV.Fma(x4, b0, c40); c41 = TV.Fma(x4, b1, c41);
            TV x5 = TV.Broadcast(a[5]); c50 = TV.Fma(x5, b0, c50); c51 = TV.Fma(x5, b1, c51);
            if (TR.MR > 6)
            {
                TV x6 = TV.Broadcast(a[6]); c60 = TV.Fma(x6, b0, c60); c61 = TV.Fma(x6, b1, c61);
                TV x7 = TV.Broadcast(a[7]); c70 = TV.Fma(x7, b0, c70); c71 = TV.Fma(x7, b1, c71);
                TV x8 = TV.Broadcast(a[8]); c80 = TV.Fma(x8, b0, c80); c81 = TV.Fma(x8, b1, c81);
                TV x9 = TV.Broadcast(a[9]); c90 = TV.Fma(x9, b0, c90); c91 = TV.Fma(x9, b1, c91);
                TV xa = TV.Broadcast(a[10]); ca0 = TV.Fma(xa, b0, ca0); ca1 = TV.Fma(xa, b1, ca1);
                TV xb = TV.Broadcast(a[11]); cb0 = TV.Fma(xb, b0, cb0); cb1 = TV.Fma(xb, b1, cb1);
            }
            if (TR.MR > 12)
            {
                TV xc = TV.Broadcast(a[12]); cc0 = TV.Fma(xc, b0, cc0); cc1 = TV.Fma(xc, b1, cc1);
                TV xd = TV.Broadcast(a[13]); cd0 = TV.Fma(xd, b0, cd0); cd1 = TV.Fma(xd, b1, cd1);
            }
            a += mr;
            b += 2 * (nint)w;
        }
        Row(c, c00, c01, add); Row(c + ldc, c10, c11, add); Row(c + 2 * ldc, c20, c21, add);
        Row(c + 3 * ldc, c30, c31, add); Row(c + 4 * ldc, c40, c41, add); Row(c + 5 * ldc, c50, c51, add);
        if (TR.MR > 6)
        {
            Row(c + 6 * ldc, c60, c61, add); Row(c + 7 * ldc, c70, c71, add); Row(c + 8 * ldc, c80, c81, add);
            Row(c + 9 * ldc, c90, c91, add); Row(c + 10 * ldc, ca0, ca1, add); Row(c + 11 * ldc, cb0, cb1, add);
        }
        if (TR.MR > 12)
        {
            Row(c + 12 * ldc, cc0, cc1, add); Row(c + 13 * ldc, cd0, cd1, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row<TV>(float* c, TV v0, TV v1, bool add) where TV : struct, IVec<TV>
    {
        nuint w = (nuint)TV.Count;
        if (add)
        {
            v0 = TV.Add(TV.Load(in *c, 0), v0);
            v1 = TV.Add(TV.Load(in *c, w), v1);
        }
        TV.Store(v0, ref *c, 0);
        TV.Store(v1, ref *c, w);
    }

    /// <summary>
    /// A few rows (at most 4) of C from unpacked operands, for short M (decode, GEMV-like):
    /// C[r, 0..NR) (+)= sum_p A(r, p) · B[p, 0..NR) with A(r,p) = a[r*rsA + p*csA] and B rows
    /// <paramref name="ldb"/> floats apart. Rows at or beyond <paramref name="rows"/> reuse row 0
    /// and are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Rows4<TV>(nint kc, float* a, nint rsA, nint csA, float* b, nint ldb, float* c, nint ldc, int rows, bool add)
        where TV : struct, IVec<TV>
    {
        float* a0 = a, a1 = rows > 1 ? a + rsA : a, a2 = rows > 2 ? a + 2 * rsA : a, a3 = rows > 3 ? a + 3 * rsA : a;
        TV z = TV.Zero;
        TV c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
        nuint w = (nuint)TV.Count;
        nint off = 0;
        for (nint p = 0; p < kc; p++, off += csA)
        {
            TV b0 = TV.Load(in *b, 0);
            TV b1 = TV.Load(in *b, w);
            TV x0 = TV.Broadcast(a0[off]); c00 = TV.Fma(x0, b0, c00); c01 = TV.Fma(x0, b1, c01);
            TV x1 = TV.Broadcast(a1[off]); c10 = TV.Fma(x1, b0, c10); c11 = TV.Fma(x1, b1, c11);
            TV x2 = TV.Broadcast(a2[off]); c20 = TV.Fma(x2, b0, c20); c21 = TV.Fma(x2, b1, c21);
            TV x3 = TV.Broadcast(a3[off]); c30 = TV.Fma(x3, b0, c30); c31 = TV.Fma(x3, b1, c31);
            b += ldb;
        }
        Row(c, c00, c01, add);
        if (rows > 1) Row(c + ldc, c10, c11, add);
        if (rows > 2) Row(c + 2 * ldc, c20, c21, add);
        if (rows > 3) Row(c + 3 * ldc, c30, c31, add);
    }

    /// <summary>Four dot products of one A row with four B rows, all <paramref name="k"/> long.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4<TV>(nint k, float* a, float* b0, float* b1, float* b2, float* b3, out float s0, out float s1, out float s2, out float s3)
        where TV : struct, IVec<TV>
    {
        TV z = TV.Zero;
        TV d0 = z, d1 = z, d2 = z, d3 = z;
        nint w = TV.Count, p = 0;
        for (; p <= k - w; p += w)
        {
            TV x = TV.Load(in a[p], 0);
            d0 = TV.Fma(x, TV.Load(in b0[p], 0), d0);
            d1 = TV.Fma(x, TV.Load(in b1[p], 0), d1);
            d2 = TV.Fma(x, TV.Load(in b2[p], 0), d2);
            d3 = TV.Fma(x, TV.Load(in b3[p], 0), d3);
        }
        s0 = TV.Sum(d0); s1 = TV.Sum(d1); s2 = TV.Sum(d2); s3 = TV.Sum(d3);
        for (; p < k; p++)
        {
            float x = a[p];
            s0 = MathF.FusedMultiplyAdd(x, b0[p], s0);
            s1 = MathF.FusedMultiplyAdd(x, b1[p], s1);
            s2 = MathF.FusedMultiplyAdd(x, b2[p], s2);
            s3 = MathF.FusedMultiplyAdd(x, b3[p], s3);
        }
    }
}
