using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
namespace EdgeTune.Compression.Distillation;

/// <summary>Which Kullback-Leibler divergence the student minimises against the teacher.</summary>
public enum KlDirection
{
    /// <summary>KL(p_T ‖ p_S): mass-covering; the student spreads over every token the teacher likes (Hinton et al.).</summary>
    Forward,

    /// <summary>KL(p_S ‖ p_T): mode-seeking; the student concentrates on the teacher's main modes (MiniLLM-style).</summary>
    Reverse,
}

/// <summary>
/// The distillation loss of one position: <c>α·τ²·KL(τ) + (1 − α)·CE</c>, where KL compares the
/// teacher and student distributions both softened by temperature τ (softmax of logits / τ) in the
/// chosen <see cref="Direction"/>, τ² keeps gradient magnitudes comparable across temperatures
/// (Hinton et al. 2015), and CE is the ordinary cross-entropy of the student (τ = 1) on the
/// ground-truth next token. α = 0 is plain cross-entropy; α = 1 is pure distillation.
/// </summary>
public readonly record struct DistillationSettings(KlDirection Direction = KlDirection.Forward, double Temperature = 2.0, double Alpha = 0.5)
{
    /// <summary>Forward KL, τ = 2, α = 0.5.</summary>
    public static DistillationSettings Default => new(KlDirection.Forward, 2.0, 0.5);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the field unless τ &gt; 0 (finite) and α ∈ [0, 1].</summary>
    public void Validate()
    {
        if (!double.IsFinite(Temperature) || Temperature <= 0)
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "distillation temperature must be a finite number > 0");
        if (!(Alpha >= 0 && Alpha <= 1))
            throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "distillation alpha (weight of the KL term) must lie in [0, 1]");
        if (!Enum.IsDefined(Direction))
            throw new ArgumentOutOfRangeException(nameof(Direction), Direction, "KL direction must be Forward or Reverse");
    }
}
