using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>Vector and scalar forms of the transcendental pieces activations are built from.</summary>
internal static class VMath
{
    public const float SqrtTwoOverPi = 0.7978845608028654f;
    public const float GeluCubic = 0.044715f;
    public const float InvSqrtTwo = 0.7071067811865476f;
    public const float InvSqrtTwoPi = 0.3989422804014327f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Sigmoid<TV>(TV x) where TV : struct, IVec<TV>
        => TV.Div(TV.Broadcast(1f), TV.Add(TV.Broadcast(1f), TV.Exp(TV.Neg(x))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>tanh(u) = 1 − 2/(e^{2u}+1): saturates cleanly to ±1 when e^{2u} overflows or vanishes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Tanh<TV>(TV u) where TV : struct, IVec<TV>
    {
        TV one = TV.Broadcast(1f);
        TV e = TV.Exp(TV.Add(u, u));
        return TV.Sub(one, TV.Div(TV.Broadcast(2f), TV.Add(e, one)));
    }

    /// <summary>erf by Abramowitz &amp; Stegun 7.1.26 (absolute error ≤ 1.5e-7, below float resolution of 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Erf<TV>(TV x) where TV : struct, IVec<TV>
    {
        TV ax = TV.Abs(x);
        TV t = TV.Div(TV.Broadcast(1f), TV.Fma(TV.Broadcast(0.3275911f), ax, TV.Broadcast(1f)));
        TV p = TV.Broadcast(1.061405429f);
        p = TV.Fma(p, t, TV.Broadcast(-1.453152027f));
        p = TV.Fma(p, t, TV.Broadcast(1.421413741f));
        p = TV.Fma(p, t, TV.Broadcast(-0.284496736f));
        p = TV.Fma(p, t, TV.Broadcast(0.254829592f));
        p = TV.Mul(p, t);
        TV e = TV.Sub(TV.Broadcast(1f), TV.Mul(p, TV.Exp(TV.Neg(TV.Mul(ax, ax)))));
        return TV.Select(TV.GreaterThan(TV.Zero, x), TV.Neg(e), e);
    }

    /// <summary>Scalar form of <see cref="Erf{TV}"/>, same formula, so vector body and tail agree.</summary>
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        float t = 1f / MathF.FusedMultiplyAdd(0.3275911f, ax, 1f);
        float p = 1.061405429f;
        p = MathF.FusedMultiplyAdd(p, t, -1.453152027f);
        p = MathF.FusedMultiplyAdd(p, t, 1.421413741f);
        p = MathF.FusedMultiplyAdd(p, t, -0.284496736f);
        p = MathF.FusedMultiplyAdd(p, t, 0.254829592f);
        float e = 1f - p * t * MathF.Exp(-ax * ax);
        return x < 0 ? -e : e;
    }
}

internal readonly struct AddOp : IBinaryOp
{
    public float Apply(float a, float b) => a + b;
    public TV Apply<TV>(TV a, TV b) where TV : struct, IVec<TV> => TV.Add(a, b);
}

internal readonly struct SubOp : IBinaryOp
{
    public float Apply(float a, float b) => a - b;
    public TV Apply<TV>(TV a, TV b) where TV : struct, IVec<TV> => TV.Sub(a, b);
}

internal readonly struct MulOp : IBinaryOp
{
    public float Apply(float a, float b) => a * b;
    public TV Apply<TV>(TV a, TV b) where TV : struct, IVec<TV> => TV.Mul(a, b);
}

/// <summary>y = s·x.</summary>
internal readonly struct ScaleOp(float s) : IUnaryOp
{
    public float Apply(float x) => s * x;
    public TV Apply<TV>(TV x) where TV : struct, IVec<TV> => TV.Mul(TV.Broadcast(s), x);
}

/// <summary>(x, y) → s·x + y.</summary>
internal readonly struct AxpyOp(float s) : IBinaryOp
{
    public float Apply(float x, float y) => MathF.FusedMultiplyAdd(s, x, y);
    public TV Apply<TV>(TV x, TV y) where TV : struct, IVec<TV> => TV.Fma(TV.Broadcast(s), x, y);
}

/// <summary>silu(x) = x·σ(x).</summary>
internal readonly struct SiLUOp : IUnaryOp
{
    public float Apply(float x) => x * VMath.Sigmoid(x);
    public TV Apply<TV>(TV x) where TV : struct, IVec<TV> => TV.Mul(x, VMath.Sigmoid(x));
}

/// <summary>(x, dy, dx) → dx + dy·σ(x)(1 + x(1−σ(x))).</summary>
internal readonly struct SiLUBackwardOp : ITernaryOp
{
    public float Apply(float x, float dy, float dx)
    {
        float s = VMath.Sigmoid(x);
        return MathF.FusedMultiplyAdd(dy, s * (1f + x * (1f - s)), dx);
    }

    public TV Apply<TV>(TV x, TV dy, TV dx) where TV : struct, IVec<TV>
    {
        TV one = TV.Broadcast(1f);
        TV s = VMath.Sigmoid(x);
        TV d = TV.Mul(s, TV.Fma(x, TV.Sub(one, s), one));
        return TV.Fma(dy, d, dx);
    }
}

/// <summary>gelu(x) ≈ ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
internal readonly struct GeluTanhOp : IUnaryOp
{
    public float Apply(float x)
    {
        float u = VMath.SqrtTwoOverPi * (x + VMath.GeluCubic * x * x * x);
        return 0.5f * x * (1f + MathF.Tanh(u));
    }

    public TV Apply<TV>(TV x) where TV : struct, IVec<TV>
    {
        TV x2 = TV.Mul(x, x);
        TV u = TV.Mul(TV.Broadcast(VMath.SqrtTwoOverPi), TV.Mul(x, TV.Fma(TV.Broadcast(VMath.GeluCubic), x2, TV.Broadcast(1f))));
        return TV.Mul(TV.Mul(TV.Broadcast(0.5f), x), TV.Add(TV.Broadcast(1f), VMath.Tanh(u)));
    }
}

/// <summary>(x, dy, dx) → dx + dy·[½(1+t) + ½x(1−t²)·√(2/π)(1 + 3·0.044715x²)], t = tanh(u).</summary>
internal readonly struct GeluTanhBackwardOp : ITernaryOp
{
    public float Apply(float x, float dy, float dx)
    {
        float x2 = x * x;
        float t = MathF.Tanh(VMath.SqrtTwoOverPi * x * (1f + VMath.GeluCubic * x2));
        float du = VMath.SqrtTwoOverPi * (1f + 3f * VMath.GeluCubic * x2);
        float d = 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * du;
        return MathF.FusedMultiplyAdd(dy, d, dx);
    }

    public TV Apply<TV>(TV x, TV dy, TV dx) where TV : struct, IVec<TV>
    {
        TV one = TV.Broadcast(1f), half = TV.Broadcast(0.5f), k = TV.Broadcast(VMath.SqrtTwoOverPi);
        TV x2 = TV.Mul(x, x);
        TV t = VMath.Tanh(TV.Mul(k, TV.Mul(x, TV.Fma(TV.Broadcast(VMath.GeluCubic), x2, one))));
        TV du = TV.Mul(k, TV.Fma(TV.Broadcast(3f * VMath.GeluCubic), x2, one));
        TV d = TV.Fma(TV.Mul(TV.Mul(half, x), TV.Sub(one, TV.Mul(t, t))), du, TV.Mul(half, TV.Add(one, t)));
        return TV.Fma(dy, d, dx);
    }
}

/// <summary>gelu(x) = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)).</summary>
internal readonly struct GeluErfOp : IUnaryOp
{
    public float Apply(float x) => 0.5f * x * (1f + VMath.Erf(x * VMath.InvSqrtTwo));

    public TV Apply<TV>(TV x) where TV : struct, IVec<TV>
        => TV.Mul(TV.Mul(TV.Broadcast(0.5f), x), TV.Add(TV.Broadcast(1f), VMath.Erf(TV.Mul(x, TV.Broadcast(VMath.InvSqrtTwo)))));
}

/// <summary>(x, dy, dx) → dx + dy·(Φ(x) + x·φ(x)), φ(x) = e^{−x²/2}/√(2π).</summary>
internal readonly struct GeluErfBackwardOp : ITernaryOp
{
    public float Apply(float x, float dy, float dx)
    {
        float cdf = 0.5f * (1f + VMath.Erf(x * VMath.InvSqrtTwo));
        float pdf = VMath.InvSqrtTwoPi * MathF.Exp(-0.5f * x * x);
        return MathF.FusedMultiplyAdd(dy, cdf + x * pdf, dx);
    }

    public TV Apply<TV>(TV x, TV dy, TV dx) where TV : struct, IVec<TV>
    {
        TV half = TV.Broadcast(0.5f);
        TV cdf = TV.Mul(half, TV.Add(TV.Broadcast(1f), VMath.Erf(TV.Mul(x, TV.Broadcast(VMath.InvSqrtTwo)))));
        TV pdf = TV.Mul(TV.Broadcast(VMath.InvSqrtTwoPi), TV.Exp(TV.Neg(TV.Mul(half, TV.Mul(x, x)))));
        return TV.Fma(dy, TV.Fma(x, pdf, cdf), dx);
    }
}

/// <summary>(g, u) → silu(g)·u.</summary>
internal readonly struct SwiGluOp : IBinaryOp
{
    public float Apply(float g, float u) => g * VMath.Sigmoid(g) * u;
    public TV Apply<TV>(TV g, TV u) where TV : struct, IVec<TV> => TV.Mul(TV.Mul(g, VMath.Sigmoid(g)), u);
}
