using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
namespace EdgeTune.Compression.Pruning;

/// <summary>How a weight's importance is scored.</summary>
public enum PruningScore
{
    /// <summary>|W_ij|.</summary>
    Magnitude,
    /// <summary>Wanda: |W_ij|·‖X_j‖₂ with input-activation norms from calibration data (<see cref="ActivationNorms"/>).</summary>
    Wanda,
}

/// <summary>Which weights compete with each other for the kept places.</summary>
public enum PruningScope
{
    /// <summary>Each weight tensor is pruned to the target sparsity on its own.</summary>
    PerTensor,
    /// <summary>Each output row (one output channel) is pruned to the target sparsity (Wanda's choice).</summary>
    PerRow,
    /// <summary>One threshold over all decoder projections; layers end up with different sparsities.</summary>
    Global,
}

/// <summary>
/// Unstructured or N:M pruning of the decoder projections. With <see cref="N"/> and <see cref="M"/> set
/// (e.g. 2 and 4), every group of M consecutive weights along the input dimension keeps its N best-scored
/// weights and <see cref="Sparsity"/> and <see cref="Scope"/> are not used; a row's last group shorter than
/// M is left dense.
/// </summary>
public sealed record PruningOptions
{
    public PruningScore Score { get; init; } = PruningScore.Magnitude;

    /// <summary>Share of the weights to remove, in [0, 1) (unstructured only).</summary>
    public double Sparsity { get; init; } = 0.5;

    /// <summary>Default: <see cref="PruningScope.PerTensor"/> for magnitude, <see cref="PruningScope.PerRow"/> for Wanda.</summary>
    public PruningScope? Scope { get; init; }

    /// <summary>Weights kept per group of <see cref="M"/> (semi-structured); 0 = unstructured.</summary>
    public int N { get; init; }

    public int M { get; init; }

    public bool IsSemiStructured => M > 0;

    public PruningScope ResolvedScope => Scope ?? (Score == PruningScore.Wanda ? PruningScope.PerRow : PruningScope.PerTensor);

    /// <summary>2:4 semi-structured sparsity (NVIDIA's sparse tensor cores' pattern).</summary>
    public static PruningOptions TwoFour(PruningScore score = PruningScore.Magnitude) => new() { Score = score, N = 2, M = 4 };

    public PruningOptions Validate()
    {
        if (IsSemiStructured || N != 0)
        {
            if (M < 1 || N < 0 || N > M) throw new ArgumentException($"PruningOptions: N:M = {N}:{M}; expected 0 ≤ N ≤ M and M ≥ 1");
        }
        else if (!(Sparsity >= 0 && Sparsity < 1))
            throw new ArgumentException($"PruningOptions: sparsity {Sparsity} is outside [0, 1)");
        if (Score == PruningScore.Wanda && ResolvedScope == PruningScope.Global)
            throw new ArgumentException("PruningOptions: Wanda scores are not comparable across layers; use PerRow or PerTensor scope");
        return this;
    }
}
