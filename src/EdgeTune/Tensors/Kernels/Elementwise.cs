using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>Which GELU: the exact one, x·Φ(x) with erf, or the tanh approximation (GPT-2).</summary>
public enum GeluApproximation { Exact = 0, Tanh = 1 }

/// <summary>
/// Elementwise float kernels (vectorized at <see cref="Simd.Width"/>; <see cref="SimdWidth.Scalar"/>
/// runs <see cref="ElementwiseReference"/>). All spans of one call must have the same length,
/// except where a shape is given. An output may be the same span as an input (in place), but must
/// not partially overlap one. Backward methods ACCUMULATE (+=) into their gradient spans.
/// </summary>
public static class Elementwise
{
    /// <summary>y = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        Same("Elementwise.Add", a.Length, b.Length, y.Length, "a", "b", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Add(a, b, y);
        else Map.Binary(a, b, y, new AddOp());
    }

    /// <summary>y = a − b.</summary>
    public static void Sub(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        Same("Elementwise.Sub", a.Length, b.Length, y.Length, "a", "b", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Sub(a, b, y);
        else Map.Binary(a, b, y, new SubOp());
    }

    /// <summary>y = a ⊙ b.</summary>
    public static void Mul(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        Same("Elementwise.Mul", a.Length, b.Length, y.Length, "a", "b", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Mul(a, b, y);
        else Map.Binary(a, b, y, new MulOp());
    }

    /// <summary>y[R,C] += bias[C] (a bias or any row vector broadcast over rows).</summary>
    public static void AddRowBias(Span<float> y, ReadOnlySpan<float> bias, int rows, int cols)
    {
        CheckRows("Elementwise.AddRowBias", "y", y.Length, "bias", bias.Length, rows, cols);
        if (Simd.Width == SimdWidth.Scalar) { ElementwiseReference.AddRowBias<float>(y, bias, rows, cols); return; }
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = y.Slice(r * cols, cols);
            Map.Binary(row, bias, row, new AddOp());
        }
    }

    /// <summary>dBias[C] += Σ_r dy[r, C].</summary>
    public static void AddRowBiasBackward(ReadOnlySpan<float> dy, Span<float> dBias, int rows, int cols)
    {
        CheckRows("Elementwise.AddRowBiasBackward", "dy", dy.Length, "dBias", dBias.Length, rows, cols);
        if (Simd.Width == SimdWidth.Scalar) { ElementwiseReference.AddRowBiasBackward(dy, dBias, rows, cols); return; }
        for (int r = 0; r < rows; r++)
            Map.Binary(dBias, dy.Slice(r * cols, cols), dBias, new AddOp());
    }

    /// <summary>y = a·x.</summary>
    public static void Scale(ReadOnlySpan<float> x, float a, Span<float> y)
    {
        Same("Elementwise.Scale", x.Length, y.Length, "x", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Scale(x, a, y);
        else Map.Unary(x, y, new ScaleOp(a));
    }

    /// <summary>y += a·x (axpy).</summary>
    public static void AddScaled(Span<float> y, float a, ReadOnlySpan<float> x)
    {
        Same("Elementwise.AddScaled", x.Length, y.Length, "x", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.AddScaled(y, a, x);
        else Map.Binary(x, y, y, new AxpyOp(a));
    }

    /// <summary>y = x·σ(x).</summary>
    public static void SiLU(ReadOnlySpan<float> x, Span<float> y)
    {
        Same("Elementwise.SiLU", x.Length, y.Length, "x", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.SiLU(x, y);
        else Map.Unary(x, y, new SiLUOp());
    }

    /// <summary>dx += dy·σ(x)(1 + x(1−σ(x))). x is the forward input.</summary>
    public static void SiLUBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        Same("Elementwise.SiLUBackward", x.Length, dy.Length, dx.Length, "x", "dy", "dx");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.SiLUBackward(x, dy, dx);
        else Map.Ternary(x, dy, dx, dx, new SiLUBackwardOp());
    }

    /// <summary>y = gelu(x), exact (erf) or tanh-approximated.</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y, GeluApproximation approximation)
    {
        Same("Elementwise.Gelu", x.Length, y.Length, "x", "y");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Gelu(x, y, approximation);
        else if (approximation == GeluApproximation.Tanh) Map.Unary(x, y, new GeluTanhOp());
        else Map.Unary(x, y, new GeluErfOp());
    }

    /// <summary>dx += dy·gelu'(x), the derivative of the same variant. x is the forward input.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, GeluApproximation approximation)
    {
        Same("Elementwise.GeluBackward", x.Length, dy.Length, dx.Length, "x", "dy", "dx");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.GeluBackward(x, dy, dx, approximation);
        else if (approximation == GeluApproximation.Tanh) Map.Ternary(x, dy, dx, dx, new GeluTanhBackwardOp());
        else Map.Ternary(x, dy, dx, dx, new GeluErfBackwardOp());
    }

    /// <summary>h = silu(g) ⊙ u (the gated MLP of Llama: g = gate projection, u = up projection).</summary>
    public static void SwiGlu(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        Same("Elementwise.SwiGlu", g.Length, u.Length, h.Length, "g", "u", "h");
        if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.SwiGlu(g, u, h);
        else Map.Binary(g, u, h, new SwiGluOp());
    }

    /// <summary>dg += dh·u·silu'(g); du += dh·silu(g). g and u are the forward inputs.</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> dh, Span<float> dg, Span<float> du)
    {
        const string op = "Elementwise.SwiGluBackward";
        Same(op, g.Length, u.Length, dh.Length, "g", "u", "dh");
        Same(op, g.Length, dg.Length, du.Length, "g", "dg", "du");
        switch (Simd.Width)
        {
            case SimdWidth.V512: SwiGluBackwardCore<V512>(g, u, dh, dg, du); break;
            case SimdWidth.V256: SwiGluBackwardCore<V256>(g, u, dh, dg, du); break;
            case SimdWidth.V128: SwiGluBackwardCore<V128>(g, u, dh, dg, du); break;
            default: ElementwiseReference.SwiGluBackward(g, u, dh, dg, du); break;
        }
    }

    internal static void SwiGluBackwardCore<TV>(ReadOnlySpan<float> g, ReadOnlySpan<float> u, ReadOnlySpan<float> dh, Span<float> dg, Span<float> du)
        where TV : struct, IVec<TV>
    {
        int n = g.Length;
        if (u.Length < n || dh.Length < n || dg.Length < n || du.Length < n)
            throw new ShapeException($"Elementwise.SwiGluBackward: every span needs {n} elements");
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float pu = ref MemoryMarshal.GetReference(u);
        ref float ph = ref MemoryMarshal.GetReference(dh);
        ref float pdg = ref MemoryMarshal.GetReference(dg);
        ref float pdu = ref MemoryMarshal.GetReference(du);
        TV one = TV.Broadcast(1f);
        int i = 0;
        for (; i <= n - TV.Count; i += TV.Count)
        {
            nuint o = (nuint)i;
            TV gv = TV.Load(in pg, o), hv = TV.Load(in ph, o);
            TV s = VMath.Sigmoid(gv);
            TV dsilu = TV.Mul(s, TV.Fma(gv, TV.Sub(one, s), one));
            TV.Store(TV.Fma(TV.Mul(hv, TV.Load(in pu, o)), dsilu, TV.Load(in pdg, o)), ref pdg, o);
            TV.Store(TV.Fma(hv, TV.Mul(gv, s), TV.Load(in pdu, o)), ref pdu, o);
        }
        for (; i < n; i++)
        {
            float gv = Unsafe.Add(ref pg, i), hv = Unsafe.Add(ref ph, i);
            float s = VMath.Sigmoid(gv);
            Unsafe.Add(ref pdg, i) += hv * Unsafe.Add(ref pu, i) * (s * (1f + gv * (1f - s)));
            Unsafe.Add(ref pdu, i) += hv * (gv * s);
        }
    }

    /// <summary>y[i] = value.</summary>
    public static void Fill(Span<float> y, float value) => y.Fill(value);

    /// <summary>y[i] = 0 (gradients are zeroed explicitly; backward passes only accumulate).</summary>
    public static void Zero(Span<float> y) => y.Clear();

    /// <summary>destination = source (same length).</summary>
    public static void Copy(ReadOnlySpan<float> source, Span<float> destination)
    {
        Same("Elementwise.Copy", source.Length, destination.Length, "source", "destination");
        source.CopyTo(destination);
    }

    internal static void Same(string op, int a, int b, string nameA, string nameB)
    {
        if (a != b)
            throw new ShapeException($"{op}: '{nameB}' has {b} elements, expected {a} (the length of '{nameA}')");
    }

    internal static void Same(string op, int a, int b, int c, string nameA, string nameB, string nameC)
    {
        Same(op, a, b, nameA, nameB);
        Same(op, a, c, nameA, nameC);
    }

    /// <summary>Checks a [rows, cols] matrix against a [cols] row vector.</summary>
    internal static void CheckRows(string op, string matrix, int matrixLength, string vector, int vectorLength, int rows, int cols)
    {
        ShapeException.RequireNonNegative(op, "R", rows);
        ShapeException.RequireNonNegative(op, "C", cols);
        if (matrixLength != (long)rows * cols)
            throw new ShapeException($"{op}: '{matrix}' has {matrixLength} elements, expected R·C = {rows}·{cols} = {(long)rows * cols}");
        if (vectorLength != cols)
            throw new ShapeException($"{op}: '{vector}' has {vectorLength} elements, expected C = {cols}");
    }
}
