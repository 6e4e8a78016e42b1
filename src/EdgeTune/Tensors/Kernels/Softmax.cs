using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Row softmax and log-softmax over x [R, C], numerically stable (the row max is subtracted before
/// exp, so logits of ±1e30 are fine). Vectorized at <see cref="Simd.Width"/>; <see cref="SimdWidth.Scalar"/>
/// runs <see cref="SoftmaxReference"/>. Forward overwrites y (y may be x itself); backward needs
/// the forward OUTPUT y and ACCUMULATES into dx (dx must not overlap y or dy).
/// A row that is all −∞ has no defined softmax and gives NaN.
/// </summary>
public static class Softmax
{
    /// <summary>y[r,:] = exp(x[r,:] − max) / Σ exp(x[r,:] − max).  x, y: [R, C].</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check("Softmax.Forward", x.Length, y.Length, "x", "y", rows, cols);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols);
            Span<float> yr = y.Slice(r * cols, cols);
            switch (Simd.Width)
            {
                case SimdWidth.V512: ForwardRow<V512>(xr, yr, log: false); break;
                case SimdWidth.V256: ForwardRow<V256>(xr, yr, log: false); break;
                case SimdWidth.V128: ForwardRow<V128>(xr, yr, log: false); break;
                default: SoftmaxReference.Forward<float>(xr, yr, 1, cols); break;
            }
        }
    }

    /// <summary>dx += y ⊙ (dy − Σ_c dy⊙y), per row. y: the forward output; all [R, C].</summary>
    public static void Backward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check("Softmax.Backward", y.Length, dy.Length, "y", "dy", rows, cols);
        Check("Softmax.Backward", y.Length, dx.Length, "y", "dx", rows, cols);
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            switch (Simd.Width)
            {
                case SimdWidth.V512: BackwardRow<V512>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: false); break;
                case SimdWidth.V256: BackwardRow<V256>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: false); break;
                case SimdWidth.V128: BackwardRow<V128>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: false); break;
                default: SoftmaxReference.Backward<float>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), 1, cols); break;
            }
        }
    }

    /// <summary>y[r,:] = x[r,:] − max − log Σ exp(x[r,:] − max).  x, y: [R, C].</summary>
    public static void LogForward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        Check("Softmax.LogForward", x.Length, y.Length, "x", "y", rows, cols);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * cols, cols);
            Span<float> yr = y.Slice(r * cols, cols);
            switch (Simd.Width)
            {
                case SimdWidth.V512: ForwardRow<V512>(xr, yr, log: true); break;
                case SimdWidth.V256: ForwardRow<V256>(xr, yr, log: true); break;
                case SimdWidth.V128: ForwardRow<V128>(xr, yr, log: true); break;
                default: SoftmaxReference.LogForward<float>(xr, yr, 1, cols); break;
            }
        }
    }

    /// <summary>dx += dy − exp(y)·Σ_c dy, per row. y: the forward log-softmax output; all [R, C].</summary>
    public static void LogBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, int rows, int cols)
    {
        Check("Softmax.LogBackward", y.Length, dy.Length, "y", "dy", rows, cols);
        Check("Softmax.LogBackward", y.Length, dx.Length, "y", "dx", rows, cols);
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            switch (Simd.Width)
            {
                case SimdWidth.V512: BackwardRow<V512>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: true); break;
                case SimdWidth.V256: BackwardRow<V256>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: true); break;
                case SimdWidth.V128: BackwardRow<V128>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), log: true); break;
                default: SoftmaxReference.LogBackward<float>(y.Slice(o, cols), dy.Slice(o, cols), dx.Slice(o, cols), 1, cols); break;
            }
        }
    }

    /// <summary>One row of softmax (or log-softmax) forward; y.Length ≥ x.Length.</summary>
    internal static void ForwardRow<TV>(ReadOnlySpan<float> x, Span<float> y, bool log) where TV : struct, IVec<TV>
    {
        int n = x.Length, i, w = TV.Count;
        if (y.Length < n) throw new ShapeException($"Softmax: 'y' row has {y.Length} elements, needs {n}");
        if (n == 0) return;
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        float max = Reductions.MaxCore<TV>(x);
        TV vmax = TV.Broadcast(max);
        double total = 0;
        i = 0;
        while (i <= n - w)
        {
            TV acc = TV.Zero;
            int end = Math.Min(n - w, i + Reductions.Block - w);
            for (; i <= end; i += w)
            {
                TV e = TV.Exp(TV.Sub(TV.Load(in px, (nuint)i), vmax));
                if (!log) TV.Store(e, ref py, (nuint)i);
                acc = TV.Add(acc, e);
            }
            total += TV.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(Unsafe.Add(ref px, i) - max);
            if (!log) Unsafe.Add(ref py, i) = e;
            total += e;
        }
        if (log)
        {
            float lse = (float)Math.Log(total);
            TV vl = TV.Broadcast(lse);
            for (i = 0; i <= n - w; i += w)
                TV.Store(TV.Sub(TV.Sub(TV.Load(in px, (nuint)i), vmax), vl), ref py, (nuint)i);
            for (; i < n; i++) Unsafe.Add(ref py, i) = Unsafe.Add(ref px, i) - max - lse;
        }
        else
        {
            Map.Unary<TV, ScaleOp>(y[..n], y, new ScaleOp((float)(1.0 / total)));
        }
    }

    /// <summary>One row of softmax (or log-softmax) backward, accumulating into dx.</summary>
    internal static void BackwardRow<TV>(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, bool log)
        where TV : struct, IVec<TV>
    {
        if (log)
        {
            float sum = (float)Reductions.SumCore<TV>(dy);
            Map.Ternary<TV, LogSoftmaxBackwardOp>(y, dy, dx, dx, new LogSoftmaxBackwardOp(sum));
        }
        else
        {
            float dot = (float)Reductions.DotCore<TV>(dy, y);
            Map.Ternary<TV, SoftmaxBackwardOp>(y, dy, dx, dx, new SoftmaxBackwardOp(dot));
        }
    }

    private static void Check(string op, int aLen, int bLen, string a, string b, int rows, int cols)
    {
        ShapeException.RequireNonNegative(op, "R", rows);
        ShapeException.RequireNonNegative(op, "C", cols);
        long need = (long)rows * cols;
        if (aLen != need) throw new ShapeException($"{op}: '{a}' has {aLen} elements, expected R·C = {rows}·{cols} = {need}");
        if (bLen != need) throw new ShapeException($"{op}: '{b}' has {bLen} elements, expected R·C = {rows}·{cols} = {need}");
    }

    /// <summary>(y, dy, dx) → dx + y·(dy − dot).</summary>
    internal readonly struct SoftmaxBackwardOp(float dot) : ITernaryOp
    {
        public float Apply(float y, float dy, float dx) => MathF.FusedMultiplyAdd(y, dy - dot, dx);
        public TV Apply<TV>(TV y, TV dy, TV dx) where TV : struct, IVec<TV> => TV.Fma(y, TV.Sub(dy, TV.Broadcast(dot)), dx);
    }

    /// <summary>(y, dy, dx) → dx + dy − exp(y)·sum.</summary>
    internal readonly struct LogSoftmaxBackwardOp(float sum) : ITernaryOp
    {
        public float Apply(float y, float dy, float dx) => dx + dy - MathF.Exp(y) * sum;
        public TV Apply<TV>(TV y, TV dy, TV dx) where TV : struct, IVec<TV>
            => TV.Sub(TV.Add(dx, dy), TV.Mul(TV.Exp(y), TV.Broadcast(sum)));
    }
}

/// <summary>Plain scalar definitions of <see cref="Softmax"/>, generic over the element type.</summary>
public static class SoftmaxReference
{
    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<T> xr = x.Slice(r * cols, cols);
            Span<T> yr = y.Slice(r * cols, cols);
            T max = ReductionsReference.Max(xr), sum = T.Zero;
            for (int c = 0; c < cols; c++) { yr[c] = T.Exp(xr[c] - max); sum += yr[c]; }
            for (int c = 0; c < cols; c++) yr[c] /= sum;
        }
    }

    public static void LogForward<T>(ReadOnlySpan<T> x, Span<T> y, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<T> xr = x.Slice(r * cols, cols);
            T max = ReductionsReference.Max(xr), sum = T.Zero;
            for (int c = 0; c < cols; c++) sum += T.Exp(xr[c] - max);
            T lse = T.Log(sum);
            for (int c = 0; c < cols; c++) y[r * cols + c] = xr[c] - max - lse;
        }
    }

    /// <summary>dx += y ⊙ (dy − Σ dy⊙y).</summary>
    public static void Backward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T dot = T.Zero;
            for (int c = 0; c < cols; c++) dot += dy[o + c] * y[o + c];
            for (int c = 0; c < cols; c++) dx[o + c] += y[o + c] * (dy[o + c] - dot);
        }
    }

    /// <summary>dx += dy − exp(y)·Σ dy (y is the log-softmax output).</summary>
    public static void LogBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            int o = r * cols;
            T sum = T.Zero;
            for (int c = 0; c < cols; c++) sum += dy[o + c];
            for (int c = 0; c < cols; c++) dx[o + c] += dy[o + c] - T.Exp(y[o + c]) * sum;
        }
    }
}
