using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// RMS normalisation over the rows of x [R, C]: y = x · rstd ⊙ w, rstd = 1/√(mean(x²) + eps).
/// Forward writes y [R, C] and the per-row rstd [R] (which backward needs); backward ACCUMULATES
/// into dx [R, C] and dw [C]. Vectorized at <see cref="Simd.Width"/>; <see cref="SimdWidth.Scalar"/>
/// runs <see cref="RmsNormReference"/>. y may be x itself; dx must not overlap x or dy.
/// </summary>
public static class RmsNorm
{
    /// <summary>x, y: [R, C]; w: [C]; rstd: [R] (written).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int rows, int cols, float eps)
    {
        const string op = "RmsNorm.Forward";
        Norms.CheckMatrix(op, "x", x.Length, rows, cols);
        Norms.CheckMatrix(op, "y", y.Length, rows, cols);
        Norms.CheckVector(op, "w", w.Length, cols, "C");
        Norms.CheckVector(op, "rstd", rstd.Length, rows, "R");
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            switch (Simd.Width)
            {
                case SimdWidth.V512: rstd[r] = ForwardRow<V512>(x.Slice(o, cols), w, y.Slice(o, cols), eps); break;
                case SimdWidth.V256: rstd[r] = ForwardRow<V256>(x.Slice(o, cols), w, y.Slice(o, cols), eps); break;
                case SimdWidth.V128: rstd[r] = ForwardRow<V128>(x.Slice(o, cols), w, y.Slice(o, cols), eps); break;
                default: RmsNormReference.Forward(x.Slice(o, cols), w, y.Slice(o, cols), rstd.Slice(r, 1), 1, cols, eps); break;
            }
        }
    }

    /// <summary>
    /// dx += rstd·w⊙dy − (rstd³/C)·(Σ dy⊙w⊙x)·x;  dw += Σ_r dy⊙x·rstd.
    /// x, dy, dx: [R, C]; w, dw: [C]; rstd: [R] from <see cref="Forward"/>.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw, int rows, int cols)
    {
        const string op = "RmsNorm.Backward";
        Norms.CheckMatrix(op, "x", x.Length, rows, cols);
        Norms.CheckMatrix(op, "dy", dy.Length, rows, cols);
        Norms.CheckMatrix(op, "dx", dx.Length, rows, cols);
        Norms.CheckVector(op, "w", w.Length, cols, "C");
        Norms.CheckVector(op, "dw", dw.Length, cols, "C");
        Norms.CheckVector(op, "rstd", rstd.Length, rows, "R");
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            switch (Simd.Width)
            {
                case SimdWidth.V512: BackwardRow<V512>(x.Slice(o, cols), w, rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw); break;
                case SimdWidth.V256: BackwardRow<V256>(x.Slice(o, cols), w, rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw); break;
                case SimdWidth.V128: BackwardRow<V128>(x.Slice(o, cols), w, rstd[r], dy.Slice(o, cols), dx.Slice(o, cols), dw); break;
                default: RmsNormReference.Backward(x.Slice(o, cols), w, rstd.Slice(r, 1), dy.Slice(o, cols), dx.Slice(o, cols), dw, 1, cols); break;
            }
        }
    }

    /// <summary>One row; returns its rstd. w and y have at least x.Length elements.</summary>
    internal static float ForwardRow<TV>(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, float eps) where TV : struct, IVec<TV>
    {
        int n = x.Length;
        if (w.Length < n || y.Length < n) throw new ShapeException($"RmsNorm: a row span is shorter than {n}");
        double ms = n == 0 ? 0 : Reductions.DotCore<TV>(x, x) / n;
        float rs = (float)(1.0 / Math.Sqrt(ms + eps));
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float py = ref MemoryMarshal.GetReference(y);
        TV vr = TV.Broadcast(rs);
        int i = 0;
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(TV.Mul(TV.Mul(TV.Load(in px, (nuint)i), vr), TV.Load(in pw, (nuint)i)), ref py, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref py, i) = Unsafe.Add(ref px, i) * rs * Unsafe.Add(ref pw, i);
        return rs;
    }

    /// <summary>One row of backward, accumulating into dx (row) and dw.</summary>
    internal static void BackwardRow<TV>(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float rs, ReadOnlySpan<float> dy,
        Span<float> dx, Span<float> dw) where TV : struct, IVec<TV>
    {
        int n = x.Length, i = 0, vw = TV.Count;
        if (w.Length < n || dy.Length < n || dx.Length < n || dw.Length < n)
            throw new ShapeException($"RmsNorm: a row span is shorter than {n}");
        if (n == 0) return;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float pdy = ref MemoryMarshal.GetReference(dy);
        ref float pdx = ref MemoryMarshal.GetReference(dx);
        ref float pdw = ref MemoryMarshal.GetReference(dw);

        // dot = Σ dy⊙w⊙x
        TV acc = TV.Zero;
        for (; i <= n - vw; i += vw)
            acc = TV.Fma(TV.Mul(TV.Load(in pdy, (nuint)i), TV.Load(in pw, (nuint)i)), TV.Load(in px, (nuint)i), acc);
        float dot = TV.Sum(acc);
        for (; i < n; i++) dot += Unsafe.Add(ref pdy, i) * Unsafe.Add(ref pw, i) * Unsafe.Add(ref px, i);

        float k = -rs * rs * rs * dot / n;
        TV vr = TV.Broadcast(rs), vk = TV.Broadcast(k);
        for (i = 0; i <= n - vw; i += vw)
        {
            nuint o = (nuint)i;
            TV xv = TV.Load(in px, o), g = TV.Load(in pdy, o);
            TV.Store(TV.Fma(TV.Mul(vr, TV.Load(in pw, o)), g, TV.Fma(vk, xv, TV.Load(in pdx, o))), ref pdx, o);
            TV.Store(TV.Fma(TV.Mul(g, xv), vr, TV.Load(in pdw, o)), ref pdw, o);
        }
        for (; i < n; i++)
        {
            float xv = Unsafe.Add(ref px, i), g = Unsafe.Add(ref pdy, i);
            Unsafe.Add(ref pdx, i) += rs * Unsafe.Add(ref pw, i) * g + k * xv;
            Unsafe.Add(ref pdw, i) += g * xv * rs;
        }
    }
}

/// <summary>Plain scalar definition of <see cref="RmsNorm"/>, generic over the element type.</summary>
public static class RmsNormReference
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, Span<T> rstd, int rows, int cols, T eps)
        where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T ss = T.Zero;
            for (int c = 0; c < cols; c++) ss += x[o + c] * x[o + c];
            T mean = cols == 0 ? T.Zero : ss / T.CreateTruncating(cols);
            T rs = T.One / T.Sqrt(mean + eps);
            rstd[r] = rs;
            for (int c = 0; c < cols; c++) y[o + c] = x[o + c] * rs * w[c];
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> rstd, ReadOnlySpan<T> dy,
        Span<T> dx, Span<T> dw, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T rs = rstd[r], dot = T.Zero;
            for (int c = 0; c < cols; c++) dot += dy[o + c] * w[c] * x[o + c];
            T k = cols == 0 ? T.Zero : rs * rs * rs * dot / T.CreateTruncating(cols);
            for (int c = 0; c < cols; c++)
            {
                dx[o + c] += rs * w[c] * dy[o + c] - k * x[o + c];
                dw[c] += dy[o + c] * x[o + c] * rs;
            }
        }
    }
}
