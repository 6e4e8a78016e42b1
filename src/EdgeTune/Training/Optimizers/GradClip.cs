using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training.Internal;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Training;

/// <summary>Global-norm gradient clipping over trainable parameters.</summary>
public static class GradClip
{
    /// <summary>√(Σ over parameters with a gradient of Σ g²), accumulated in double. May be NaN or ∞.</summary>
    public static double GlobalNorm(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double total = 0;
        foreach (var p in parameters)
            if (p.Grad is { } g) total += SumOfSquares(g);
        return Math.Sqrt(total);
    }

    /// <summary>
    /// Scales every gradient by maxNorm / (norm + 1e-6) when the global norm exceeds
    /// <paramref name="maxNorm"/>; returns the norm before clipping.
    /// </summary>
    /// <exception cref="NonFiniteException">A gradient holds NaN or ∞: the exception names the first such
    /// parameter and no gradient is changed. The step must be skipped (or training stopped) by the caller.</exception>
    public static double ClipGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "ClipGlobalNorm: the maximum norm must be > 0");
        var withGrad = parameters.Where(p => p.Grad is not null).ToList();
        double total = 0;
        foreach (var p in withGrad)
        {
            double s = SumOfSquares(p.Grad!);
            if (!double.IsFinite(s)) throw new NonFiniteException("ClipGlobalNorm", p.Name + ".grad", s);
            total += s;
        }
        double norm = Math.Sqrt(total);
        if (!double.IsFinite(norm)) throw new NonFiniteException("ClipGlobalNorm", "global gradient norm", norm);
        if (norm > maxNorm)
        {
            double scale = maxNorm / (norm + 1e-6);
            foreach (var p in withGrad)
            {
                var g = p.Grad!;
                if (g.DType == DType.F64) TensorPrimitives.Multiply(g.Span<double>(), scale, g.Span<double>());
                else TensorPrimitives.Multiply(g.Span<float>(), (float)scale, g.Span<float>());
            }
        }
        return norm;
    }

    private static double SumOfSquares(Tensor g) => g.DType switch
    {
        DType.F32 => OptimizerKernels.SumOfSquares(g.ReadOnlySpan<float>()),
        DType.F64 => OptimizerReference.SumOfSquares(g.ReadOnlySpan<double>()),
        _ => throw new ShapeException($"ClipGlobalNorm: gradient '{g.Name}' is {g.DType}; expected F32 or F64"),
    };
}
