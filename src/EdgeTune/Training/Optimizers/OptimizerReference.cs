using System.Numerics;
using EdgeTune.Tensors;

namespace EdgeTune.Training;

/// <summary>Per-step scalars of AdamW, computed once per step in double and narrowed to the element type.</summary>
/// <param name="Decay">1 − lr·wd (decoupled weight decay; 1 when the parameter is not decayed).</param>
/// <param name="StepSize">lr / (1 − β1ᵗ).</param>
/// <param name="InvSqrtBias2">1 / √(1 − β2ᵗ).</param>
public readonly record struct AdamWScalars<T>(T Decay, T Beta1, T OneMinusBeta1, T Beta2, T OneMinusBeta2, T StepSize, T InvSqrtBias2, T Epsilon)
    where T : IFloatingPointIeee754<T>;

/// <summary>Per-step scalars of SGD.</summary>
/// <param name="BufScale">Momentum μ, or 0 on the first step (the buffer starts as the gradient).</param>
/// <param name="GradScale">1 − dampening, or 1 on the first step.</param>
public readonly record struct SgdScalars<T>(T LearningRate, T WeightDecay, T Momentum, T BufScale, T GradScale, bool Nesterov)
    where T : IFloatingPointIeee754<T>;

/// <summary>
/// Plain scalar definitions of the optimizer updates, generic over the element type (F64 for
/// checks). Kept forever; the vectorized float paths perform the same operations in the same order
/// without fused multiply-add, so they match these bit for bit.
/// </summary>
public static class OptimizerReference
{
    /// <summary>
    /// One AdamW update, per element:
    /// w ← w·decay; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
    /// w ← w − stepSize·m / (√v·invSqrtBias2 + ε).
    /// </summary>
    public static void AdamW<T>(Span<T> w, ReadOnlySpan<T> g, Span<T> m, Span<T> v, in AdamWScalars<T> s)
        where T : IFloatingPointIeee754<T>
    {
        CheckLengths("AdamW", w.Length, g.Length, m.Length, v.Length);
        for (int i = 0; i < w.Length; i++)
        {
            T gi = g[i];
            T wi = w[i] * s.Decay;
            T mi = s.Beta1 * m[i] + s.OneMinusBeta1 * gi;
            T vi = s.Beta2 * v[i] + s.OneMinusBeta2 * (gi * gi);
            T denom = T.Sqrt(vi) * s.InvSqrtBias2 + s.Epsilon;
            w[i] = wi - s.StepSize * mi / denom;
            m[i] = mi;
            v[i] = vi;
        }
    }

    /// <summary>
    /// One SGD update, per element: d ← g + wd·w; with momentum: buf ← bufScale·buf + gradScale·d,
    /// then d ← d + μ·buf (Nesterov) or d ← buf; finally w ← w − lr·d.
    /// Pass an empty <paramref name="buf"/> when there is no momentum.
    /// </summary>
    public static void Sgd<T>(Span<T> w, ReadOnlySpan<T> g, Span<T> buf, in SgdScalars<T> s)
        where T : IFloatingPointIeee754<T>
    {
        bool momentum = buf.Length > 0;
        CheckLengths("Sgd", w.Length, g.Length, momentum ? buf.Length : w.Length, w.Length);
        for (int i = 0; i < w.Length; i++)
        {
            T d = g[i] + s.WeightDecay * w[i];
            if (momentum)
            {
                T b = s.BufScale * buf[i] + s.GradScale * d;
                buf[i] = b;
                d = s.Nesterov ? d + s.Momentum * b : b;
            }
            w[i] = w[i] - s.LearningRate * d;
        }
    }

    /// <summary>Σ x² accumulated in double, one element at a time.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float v in x) s += (double)v * v;
        return s;
    }

    /// <summary>Σ x² in double.</summary>
    public static double SumOfSquares(ReadOnlySpan<double> x)
    {
        double s = 0;
        foreach (double v in x) s += v * v;
        return s;
    }

    internal static void CheckLengths(string op, int w, int g, int s1, int s2)
    {
        if (g != w || s1 != w || s2 != w)
            throw new ShapeException($"{op}: weight has {w} elements but gradient/state have {g}, {s1}, {s2}");
    }
}
