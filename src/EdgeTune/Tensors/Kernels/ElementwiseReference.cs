using System.Numerics;

namespace EdgeTune.Tensors;

/// <summary>
/// Plain scalar definitions of the elementwise kernels, generic over the element type so gradient
/// checks run them in double. Kept forever as what <see cref="Elementwise"/> is tested against.
/// Same argument order and accumulation rules as <see cref="Elementwise"/>; lengths are checked there.
/// </summary>
public static class ElementwiseReference
{
    public static void Add<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] + b[i];
    }

    public static void Sub<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] - b[i];
    }

    public static void Mul<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < a.Length; i++) y[i] = a[i] * b[i];
    }

    /// <summary>y[R,C] += bias[C].</summary>
    public static void AddRowBias<T>(Span<T> y, ReadOnlySpan<T> bias, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) y[r * cols + c] += bias[c];
    }

    /// <summary>dBias[C] += Σ_r dy[r, C].</summary>
    public static void AddRowBiasBackward<T>(ReadOnlySpan<T> dy, Span<T> dBias, int rows, int cols) where T : IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) dBias[c] += dy[r * cols + c];
    }

    public static void Scale<T>(ReadOnlySpan<T> x, T a, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = a * x[i];
    }

    /// <summary>y += a·x.</summary>
    public static void AddScaled<T>(Span<T> y, T a, ReadOnlySpan<T> x) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] += a * x[i];
    }

    public static T Sigmoid<T>(T x) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-x));

    public static void SiLU<T>(ReadOnlySpan<T> x, Span<T> y) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * Sigmoid(x[i]);
    }

    /// <summary>dx += dy·σ(x)(1 + x(1−σ(x))).</summary>
    public static void SiLUBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            T s = Sigmoid(x[i]);
            dx[i] += dy[i] * s * (T.One + x[i] * (T.One - s));
        }
    }

    public static void Gelu<T>(ReadOnlySpan<T> x, Span<T> y, GeluApproximation approximation) where T : IFloatingPointIeee754<T>
    {
        T half = C<T>(0.5);
        for (int i = 0; i < x.Length; i++)
        {
            T v = x[i];
            y[i] = approximation == GeluApproximation.Tanh
                ? half * v * (T.One + T.Tanh(C<T>(SqrtTwoOverPi) * (v + C<T>(GeluCubic) * v * v * v)))
                : half * v * (T.One + Erf(v * C<T>(InvSqrtTwo)));
        }
    }

    /// <summary>dx += dy·gelu'(x).</summary>
    public static void GeluBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, GeluApproximation approximation)
        where T : IFloatingPointIeee754<T>
    {
        T half = C<T>(0.5), k = C<T>(SqrtTwoOverPi), c = C<T>(GeluCubic);
        for (int i = 0; i < x.Length; i++)
        {
            T v = x[i], d;
            if (approximation == GeluApproximation.Tanh)
            {
                T t = T.Tanh(k * (v + c * v * v * v));
                d = half * (T.One + t) + half * v * (T.One - t * t) * k * (T.One + C<T>(3) * c * v * v);
            }
            else
            {
                T cdf = half * (T.One + Erf(v * C<T>(InvSqrtTwo)));
                T pdf = C<T>(InvSqrtTwoPi) * T.Exp(-half * v * v);
                d = cdf + v * pdf;
            }
            dx[i] += dy[i] * d;
        }
    }

    /// <summary>h = silu(g) ⊙ u.</summary>
    public static void SwiGlu<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> u, Span<T> h) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < g.Length; i++) h[i] = g[i] * Sigmoid(g[i]) * u[i];
    }

    /// <summary>dg += dh·u·silu'(g); du += dh·silu(g).</summary>
    public static void SwiGluBackward<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> u, ReadOnlySpan<T> dh, Span<T> dg, Span<T> du)
        where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < g.Length; i++)
        {
            T s = Sigmoid(g[i]);
            dg[i] += dh[i] * u[i] * s * (T.One + g[i] * (T.One - s));
            du[i] += dh[i] * g[i] * s;
        }
    }

    /// <summary>
    /// The error function to the working precision of T: for |x| &lt; 3 the all-positive series
    /// erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1)); beyond, 1 − erfc(x) with erfc from its
    /// continued fraction e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …)))).
    /// </summary>
    public static T Erf<T>(T x) where T : IFloatingPointIeee754<T>
    {
        if (T.IsNaN(x)) return x;
        T ax = T.Abs(x), x2 = ax * ax, r;
        T twoOverSqrtPi = C<T>(1.1283791670955126);
        if (ax < C<T>(3))
        {
            T term = ax, sum = ax, tiny = C<T>(1e-18);
            for (int n = 1; n < 400 && term > sum * tiny; n++)
            {
                term *= (x2 + x2) / C<T>(2 * n + 1);
                sum += term;
            }
            r = twoOverSqrtPi * T.Exp(-x2) * sum;
        }
        else
        {
            T f = ax;
            for (int k = 80; k >= 1; k--) f = ax + C<T>(k * 0.5) / f;
            r = T.One - twoOverSqrtPi * C<T>(0.5) * T.Exp(-x2) / f;
        }
        return T.IsNegative(x) ? -r : r;
    }

    private const double SqrtTwoOverPi = 0.79788456080286535588;
    private const double GeluCubic = 0.044715;
    private const double InvSqrtTwo = 0.70710678118654752440;
    private const double InvSqrtTwoPi = 0.39894228040143267794;

    private static T C<T>(double v) where T : IFloatingPointIeee754<T> => T.CreateTruncating(v);
}
