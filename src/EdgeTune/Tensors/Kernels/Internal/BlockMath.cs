using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>
/// Small dense building blocks for tiled kernels (attention, cross-entropy), written once over
/// <c>TV : IVec&lt;TV&gt;</c>. They work on raw pointers into buffers whose lengths the public entry
/// points have already checked, and run inside one worker task each (no nested threading).
/// </summary>
internal static unsafe class BlockMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Ld<TV>(float* p) where TV : struct, IVec<TV> => TV.Load(in p[0], 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St<TV>(TV v, float* p) where TV : struct, IVec<TV> => TV.Store(v, ref p[0], 0);

    /// <summary>
    /// c[r, x] (+)= Σ_p a[r·ars + p·acs] · b[p·ldb + x] for r &lt; m, x &lt; w, p &lt; depth.
    /// The strides of <paramref name="a"/> let the same loop read A or Aᵀ; the loop vectorises
    /// over the output columns x, broadcasting one element of A per step.
    /// </summary>
    public static void MulAcc<TV>(float* a, int ars, int acs, float* b, int ldb, float* c, int ldc,
        int m, int depth, int w, bool accumulate) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, r = 0;
        // 4 rows × 2 vectors at a time: each step loads 2 vectors of B and broadcasts 4 elements of A for 8 FMAs
        for (; r + 4 <= m && w >= 2 * vw; r += 4)
        {
            float* a0 = a + (long)r * ars, a1 = a0 + ars, a2 = a1 + ars, a3 = a2 + ars;
            float* c0 = c + (long)r * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
            int x = 0;
            for (; x + 2 * vw <= w; x += 2 * vw)
            {
                TV s00 = TV.Zero, s01 = TV.Zero, s10 = TV.Zero, s11 = TV.Zero;
                TV s20 = TV.Zero, s21 = TV.Zero, s30 = TV.Zero, s31 = TV.Zero;
                float* bp = b + x;
                long ap = 0;
                for (int p = 0; p < depth; p++, bp += ldb, ap += acs)
                {
                    TV b0 = Ld<TV>(bp), b1 = Ld<TV>(bp + vw);
                    TV e = TV.Broadcast(a0[ap]); s00 = TV.Fma(e, b0, s00); s01 = TV.Fma(e, b1, s01);
                    e = TV.Broadcast(a1[ap]); s10 = TV.Fma(e, b0, s10); s11 = TV.Fma(e, b1, s11);
                    e = TV.Broadcast(a2[ap]); s20 = TV.Fma(e, b0, s20); s21 = TV.Fma(e, b1, s21);
                    e = TV.Broadcast(a3[ap]); s30 = TV.Fma(e, b0, s30); s31 = TV.Fma(e, b1, s31);
                }
                Put(s00, c0 + x, accumulate); Put(s01, c0 + x + vw, accumulate);
                Put(s10, c1 + x, accumulate); Put(s11, c1 + x + vw, accumulate);
                Put(s20, c2 + x, accumulate); Put(s21, c2 + x + vw, accumulate);
                Put(s30, c3 + x, accumulate); Put(s31, c3 + x + vw, accumulate);
            }
            if (x < w)
                for (int rr = 0; rr < 4; rr++) RowTail<TV>(a0 + (long)rr * ars, acs, b, ldb, c0 + (long)rr * ldc, depth, x, w, accumulate);
        }
        for (; r < m; r++) RowTail<TV>(a + (long)r * ars, acs, b, ldb, c + (long)r * ldc, depth, 0, w, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<TV>(TV v, float* p, bool accumulate) where TV : struct, IVec<TV> =>
        St(accumulate ? TV.Add(v, Ld<TV>(p)) : v, p);

    /// <summary>One row of <see cref="MulAcc{TV}"/> for output columns [x0, w).</summary>
    private static void RowTail<TV>(float* ar, int acs, float* b, int ldb, float* cr, int depth, int x0, int w, bool accumulate)
        where TV : struct, IVec<TV>
    {
        int vw = TV.Count, x = x0;
        for (; x + 2 * vw <= w; x += 2 * vw)
        {
            TV c0 = TV.Zero, c1 = TV.Zero;
            float* bp = b + x;
            for (int p = 0; p < depth; p++, bp += ldb)
            {
                TV s = TV.Broadcast(ar[(long)p * acs]);
                c0 = TV.Fma(s, Ld<TV>(bp), c0);
                c1 = TV.Fma(s, Ld<TV>(bp + vw), c1);
            }
            Put(c0, cr + x, accumulate);
            Put(c1, cr + x + vw, accumulate);
        }
        for (; x + vw <= w; x += vw)
        {
            TV c0 = TV.Zero;
            float* bp = b + x;
            for (int p = 0; p < depth; p++, bp += ldb)
                c0 = TV.Fma(TV.Broadcast(ar[(long)p * acs]), Ld<TV>(bp), c0);
            Put(c0, cr + x, accumulate);
        }
        for (; x < w; x++)
        {
            float s = 0f;
            float* bp = b + x;
            for (int p = 0; p < depth; p++, bp += ldb) s = MathF.FusedMultiplyAdd(ar[(long)p * acs], *bp, s);
            cr[x] = accumulate ? cr[x] + s : s;
        }
    }

    /// <summary>Largest of x[0..n) (n ≥ 1).</summary>
    public static float Max<TV>(float* x, int n) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        float m = float.NegativeInfinity;
        if (n >= vw)
        {
            TV acc = Ld<TV>(x);
            for (i = vw; i + vw <= n; i += vw) acc = TV.Max(acc, Ld<TV>(x + i));
            m = TV.MaxAcross(acc);
        }
        for (; i < n; i++) m = MathF.Max(m, x[i]);
        return m;
    }

    /// <summary>Largest of x[0..n) (n ≥ 1) and whether any element is NaN or ±Inf.</summary>
    public static float MaxChecked<TV>(float* x, int n, out bool nonFinite) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        float m = float.NegativeInfinity, bad = 0f;
        if (n >= vw)
        {
            TV acc = Ld<TV>(x), poison = TV.Zero;
            for (i = 0; i + vw <= n; i += vw)
            {
                TV v = Ld<TV>(x + i);
                acc = TV.Max(acc, v);
                poison = TV.Add(poison, TV.Sub(v, v)); // x - x is NaN exactly when x is NaN or ±Inf
            }
            m = TV.MaxAcross(acc);
            bad = TV.Sum(poison);
        }
        for (; i < n; i++) { m = MathF.Max(m, x[i]); bad += x[i] - x[i]; }
        nonFinite = float.IsNaN(bad) || float.IsNaN(m) || float.IsInfinity(m);
        return m;
    }

    /// <summary>x[i] = exp(x[i] − shift) for i &lt; n; returns the sum of the new values.</summary>
    public static float ExpShiftSum<TV>(float* x, int n, float shift) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV sh = TV.Broadcast(shift), acc = TV.Zero;
        for (; i + vw <= n; i += vw)
        {
            TV e = TV.Exp(TV.Sub(Ld<TV>(x + i), sh));
            St(e, x + i);
            acc = TV.Add(acc, e);
        }
        float s = TV.Sum(acc);
        for (; i < n; i++) { float e = MathF.Exp(x[i] - shift); x[i] = e; s += e; }
        return s;
    }

    /// <summary>Σ exp(x[i] − shift) for i &lt; n, leaving x unchanged.</summary>
    public static float SumExpShift<TV>(float* x, int n, float shift) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV sh = TV.Broadcast(shift), acc = TV.Zero;
        for (; i + vw <= n; i += vw) acc = TV.Add(acc, TV.Exp(TV.Sub(Ld<TV>(x + i), sh)));
        float s = TV.Sum(acc);
        for (; i < n; i++) s += MathF.Exp(x[i] - shift);
        return s;
    }

    /// <summary>y[i] = exp(x[i] − shift) · scale (+ y[i] when accumulating) for i &lt; n.</summary>
    public static void ExpShiftScale<TV>(float* x, float* y, int n, float shift, float scale, bool accumulate)
        where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV sh = TV.Broadcast(shift), sc = TV.Broadcast(scale);
        for (; i + vw <= n; i += vw)
        {
            TV e = TV.Exp(TV.Sub(Ld<TV>(x + i), sh));
            St(accumulate ? TV.Fma(e, sc, Ld<TV>(y + i)) : TV.Mul(e, sc), y + i);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(x[i] - shift) * scale;
            y[i] = accumulate ? y[i] + e : e;
        }
    }

    /// <summary>x[i] ·= s for i &lt; n.</summary>
    public static void Scale<TV>(float* x, int n, float s) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV sv = TV.Broadcast(s);
        for (; i + vw <= n; i += vw) St(TV.Mul(Ld<TV>(x + i), sv), x + i);
        for (; i < n; i++) x[i] *= s;
    }

    /// <summary>y[i] += s · x[i] for i &lt; n.</summary>
    public static void Axpy<TV>(float s, float* x, float* y, int n) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV sv = TV.Broadcast(s);
        for (; i + vw <= n; i += vw) St(TV.Fma(sv, Ld<TV>(x + i), Ld<TV>(y + i)), y + i);
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(s, x[i], y[i]);
    }

    /// <summary>Σ x[i]·y[i] for i &lt; n.</summary>
    public static float Dot<TV>(float* x, float* y, int n) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV acc = TV.Zero;
        for (; i + vw <= n; i += vw) acc = TV.Fma(Ld<TV>(x + i), Ld<TV>(y + i), acc);
        float s = TV.Sum(acc);
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(x[i], y[i], s);
        return s;
    }

    /// <summary>d[i] = p[i] · (d[i] − c) for i &lt; n (the softmax backward dS = P ⊙ (dP − D)).</summary>
    public static void SoftmaxBackward<TV>(float* p, float* d, int n, float c) where TV : struct, IVec<TV>
    {
        int vw = TV.Count, i = 0;
        TV cv = TV.Broadcast(c);
        for (; i + vw <= n; i += vw) St(TV.Mul(Ld<TV>(p + i), TV.Sub(Ld<TV>(d + i), cv)), d + i);
        for (; i < n; i++) d[i] = p[i] * (d[i] - c);
    }
}
