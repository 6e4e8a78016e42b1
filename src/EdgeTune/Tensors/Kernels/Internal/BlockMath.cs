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
        int vw = TV.Count;
        for (int r = 0; r < m; r++)
        {
            float* ar = a + (long)r * ars;
            float* cr = c + (long)r * ldc;
            int x = 0;
            for (; x + 2 * vw <= w; x += 2 * vw)
            {
                TV c0 = accumulate ? Ld<TV>(cr + x) : TV.Zero;
                TV c1 = accumulate ? Ld<TV>(cr + x + vw) : TV.Zero;
                float* bp = b + x;
                for (int p = 0; p < depth; p++, bp += ldb)
                {
                    TV s = TV.Broadcast(ar[(long)p * acs]);
                    c0 = TV.Fma(s, Ld<TV>(bp), c0);
                    c1 = TV.Fma(s, Ld<TV>(bp + vw), c1);
                }
                St(c0, cr + x);
                St(c1, cr + x + vw);
            }
            for (; x + vw <= w; x += vw)
            {
                TV c0 = accumulate ? Ld<TV>(cr + x) : TV.Zero;
                float* bp = b + x;
                for (int p = 0; p < depth; p++, bp += ldb)
                    c0 = TV.Fma(TV.Broadcast(ar[(long)p * acs]), Ld<TV>(bp), c0);
                St(c0, cr + x);
            }
            for (; x < w; x++)
            {
                float s = accumulate ? cr[x] : 0f;
                float* bp = b + x;
                for (int p = 0; p < depth; p++, bp += ldb) s = MathF.FusedMultiplyAdd(ar[(long)p * acs], *bp, s);
                cr[x] = s;
            }
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
