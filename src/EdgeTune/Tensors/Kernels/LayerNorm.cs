using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Layer normalisation over the rows of x [R, C]: y = (x − mean)·rstd ⊙ w + b,
/// rstd = 1/√(var + eps) with the biased (1/C) variance. Forward writes y [R, C], mean [R] and
/// rstd [R]; backward ACCUMULATES into dx [R, C], dw [C] and db [C]. The bias is optional: pass an
/// empty b (and an empty db) for a norm without one. Vectorized at <see cref="Simd.Width"/>;
/// <see cref="SimdWidth.Scalar"/> runs <see cref="LayerNormReference"/>. y may be x itself.
/// </summary>
public static class LayerNorm
{
    /// <summary>x, y: [R, C]; w: [C]; b: [C] or empty; mean, rstd: [R] (written).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        Span<float> mean, Span<float> rstd, int rows, int cols, float eps)
    {
        const string op = "LayerNorm.Forward";
        Norms.CheckMatrix(op, "x", x.Length, rows, cols);
        Norms.CheckMatrix(op, "y", y.Length, rows, cols);
        Norms.CheckVector(op, "w", w.Length, cols, "C");
        if (!b.IsEmpty) Norms.CheckVector(op, "b", b.Length, cols, "C");
        Norms.CheckVector(op, "mean", mean.Length, rows, "R");
        Norms.CheckVector(op, "rstd", rstd.Length, rows, "R");
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            (float m, float s) = Simd.Width switch
            {
                SimdWidth.V512 => ForwardRow<V512>(x.Slice(o, cols), w, b, y.Slice(o, cols), eps),
                SimdWidth.V256 => ForwardRow<V256>(x.Slice(o, cols), w, b, y.Slice(o, cols), eps),
                SimdWidth.V128 => ForwardRow<V128>(x.Slice(o, cols), w, b, y.Slice(o, cols), eps),
                _ => ReferenceRow(x.Slice(o, cols), w, b, y.Slice(o, cols), cols, eps),
            };
            mean[r] = m;
            rstd[r] = s;
        }
    }

    /// <summary>
    /// With x̂ = (x − mean)·rstd and g = dy⊙w: dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂));
    /// dw += Σ_r dy⊙x̂; db += Σ_r dy (skipped when db is empty).
    /// x, dy, dx: [R, C]; w, dw, db: [C]; mean, rstd: [R] from <see cref="Forward"/>.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> dy, Span<float> dx, Span<float> dw, Span<float> db, int rows, int cols)
    {
        const string op = "LayerNorm.Backward";
        Norms.CheckMatrix(op, "x", x.Length, rows, cols);
        Norms.CheckMatrix(op, "dy", dy.Length, rows, cols);
        Norms.CheckMatrix(op, "dx", dx.Length, rows, cols);
        Norms.CheckVector(op, "w", w.Length, cols, "C");
        Norms.CheckVector(op, "dw", dw.Length, cols, "C");
        if (!db.IsEmpty) Norms.CheckVector(op, "db", db.Length, cols, "C");
        Norms.CheckVector(op, "mean", mean.Length, rows, "R");
        Norms.CheckVector(op, "rstd", rstd.Length, rows, "R");
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            switch (Simd.Width)
            {
                case SimdWidth.V512: BackwardRow<V512>(x.Slice(o, cols), w, mean[r], rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw, db); break;
                case SimdWidth.V256: BackwardRow<V256>(x.Slice(o, cols), w, mean[r], rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw, db); break;
                case SimdWidth.V128: BackwardRow<V128>(x.Slice(o, cols), w, mean[r], rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw, db); break;
                default:
                    LayerNormReference.Backward(x.Slice(o, cols), w, mean.Slice(r, 1), rstd.Slice(r, 1), dy.Slice(o, cols), dx.Slice(o, cols), dw, db, 1, cols);
                    break;
            }
        }
    }

    private static (float, float) ReferenceRow(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int cols, float eps)
    {
        Span<float> m = stackalloc float[1], s = stackalloc float[1];
        LayerNormReference.Forward(x, w, b, y, m, s, 1, cols, eps);
        return (m[0], s[0]);
    }

    /// <summary>One row; returns (mean, rstd). b may be empty.</summary>
    internal static (float Mean, float Rstd) ForwardRow<TV>(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b,
        Span<float> y, float eps) where TV : struct, IVec<TV>
    {
        int n = x.Length, i = 0, vw = TV.Count;
        bool bias = !b.IsEmpty;
        if (w.Length < n || y.Length < n || (bias && b.Length < n)) throw new ShapeException($"LayerNorm: a row span is shorter than {n}");
        if (n == 0) return (0f, (float)(1.0 / Math.Sqrt(eps)));
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float pb = ref MemoryMarshal.GetReference(b);
        ref float py = ref MemoryMarshal.GetReference(y);
        float m = (float)(Reductions.SumCore<TV>(x) / n);
        TV vm = TV.Broadcast(m), acc = TV.Zero;
        for (; i <= n - vw; i += vw)
        {
            TV d = TV.Sub(TV.Load(in px, (nuint)i), vm);
            acc = TV.Fma(d, d, acc);
        }
        double var = TV.Sum(acc);
        for (; i < n; i++) { double d = Unsafe.Add(ref px, i) - m; var += d * d; }
        float rs = (float)(1.0 / Math.Sqrt(var / n + eps));
        TV vr = TV.Broadcast(rs);
        for (i = 0; i <= n - vw; i += vw)
        {
            nuint o = (nuint)i;
            TV v = TV.Mul(TV.Mul(TV.Sub(TV.Load(in px, o), vm), vr), TV.Load(in pw, o));
            TV.Store(bias ? TV.Add(v, TV.Load(in pb, o)) : v, ref py, o);
        }
        for (; i < n; i++)
            Unsafe.Add(ref py, i) = (Unsafe.Add(ref px, i) - m) * rs * Unsafe.Add(ref pw, i) + (bias ? Unsafe.Add(ref pb, i) : 0f);
        return (m, rs);
    }

    /// <summary>One row of backward, accumulating into dx (row), dw and db (db may be empty).</summary>
    internal static void BackwardRow<TV>(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float mean, float rs, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, Span<float> db) where TV : struct, IVec<TV>
    {
        int n = x.Length, i = 0, vw = TV.Count;
        bool bias = !db.IsEmpty;
        if (w.Length < n || dy.Length < n || dx.Length < n || dw.Length < n || (bias && db.Length < n))
            throw new ShapeException($"LayerNorm: a row span is shorter than {n}");
        if (n == 0) return;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        ref float pdw = ref MemoryMarshal.GetReference(dw);
        ref float pdb = ref MemoryMarshal.GetReference(db);
        TV vm = TV.Broadcast(mean), vr = TV.Broadcast(rs);

        // sg = Σ g, sgx = Σ g⊙x̂ with g = dy⊙w
        TV ag = TV.Zero, agx = TV.Zero;
        for (; i <= n - vw; i += vw)
        {
            nuint o = (nuint)i;
            TV g = TV.Mul(TV.Load(in pdy, o), TV.Load(in pw, o));
            TV xh = TV.Mul(TV.Sub(TV.Load(in px, o), vm), vr);
            ag = TV.Add(ag, g);
            agx = TV.Fma(g, xh, agx);
        }
        float sg = TV.Sum(ag), sgx = TV.Sum(agx);
        for (; i < n; i++)
        {
            float g = Unsafe.Add(ref pdy, i) * Unsafe.Add(ref pw, i);
            sg += g;
            sgx += g * (Unsafe.Add(ref px, i) - mean) * rs;
        }
        float mg = sg / n, mgx = sgx / n;
        TV vmg = TV.Broadcast(mg), vmgx = TV.Broadcast(mgx);
        for (i = 0; i <= n - vw; i += vw)
        {
            nuint o = (nuint)i;
            TV d = TV.Load(in pdy, o);
            TV xh = TV.Mul(TV.Sub(TV.Load(in px, o), vm), vr);
            TV g = TV.Mul(d, TV.Load(in pw, o));
            TV t = TV.Sub(TV.Sub(g, vmg), TV.Mul(xh, vmgx));
            TV.Store(TV.Fma(vr, t, TV.Load(in pdx, o)), ref pdx, o);
            TV.Store(TV.Fma(d, xh, TV.Load(in pdw, o)), ref pdw, o);
            if (bias) TV.Store(TV.Add(TV.Load(in pdb, o), d), ref pdb, o);
        }
        for (; i < n; i++)
        {
            float d = Unsafe.Add(ref pdy, i);
            float xh = (Unsafe.Add(ref px, i) - mean) * rs;
            float g = d * Unsafe.Add(ref pw, i);
            Unsafe.Add(ref pdx, i) += rs * (g - mg - xh * mgx);
            Unsafe.Add(ref pdw, i) += d * xh;
            if (bias) Unsafe.Add(ref pdb, i) += d;
        }
    }
}

/// <summary>Plain scalar definition of <see cref="LayerNorm"/>, generic over the element type.</summary>
public static class LayerNormReference
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, Span<T> mean, Span<T> rstd,
        int rows, int cols, T eps) where T : IFloatingPointIeee754<T>
    {
        T n = T.CreateTruncating(Math.Max(cols, 1));
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T s = T.Zero, v = T.Zero;
            for (int c = 0; c < cols; c++) s += x[o + c];
            T m = s / n;
            for (int c = 0; c < cols; c++) v += (x[o + c] - m) * (x[o + c] - m);
            T rs = T.One / T.Sqrt(v / n + eps);
            mean[r] = m;
            rstd[r] = rs;
            for (int c = 0; c < cols; c++) y[o + c] = (x[o + c] - m) * rs * w[c] + (b.IsEmpty ? T.Zero : b[c]);
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> dy,
        Span<T> dx, Span<T> dw, Span<T> db, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        T n = T.CreateTruncating(Math.Max(cols, 1));
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T m = mean[r], rs = rstd[r], sg = T.Zero, sgx = T.Zero;
            for (int c = 0; c < cols; c++)
            {
                T g = dy[o + c] * w[c];
                sg += g;
                sgx += g * (x[o + c] - m) * rs;
            }
            T mg = sg / n, mgx = sgx / n;
            for (int c = 0; c < cols; c++)
            {
                T xh = (x[o + c] - m) * rs;
                dx[o + c] += rs * (dy[o + c] * w[c] - mg - xh * mgx);
                dw[c] += dy[o + c] * xh;
                if (!db.IsEmpty) db[c] += dy[o + c];
            }
        }
    }
}
