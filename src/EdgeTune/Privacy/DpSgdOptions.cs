using System.Globalization;

namespace EdgeTune.Privacy;

/// <summary>
/// Settings of differentially private fine-tuning (<see cref="DpSgd"/>): the per-example clipping bound C and either
/// the noise multiplier σ or a target ε, from which σ is calibrated for the planned steps and sampling rate
/// (<see cref="NoiseCalibration"/>). δ is the δ of the reported (ε, δ) guarantee; it should be well below
/// 1/(training examples).
/// </summary>
public sealed record DpSgdOptions
{
    /// <summary>Per-example L2 clipping bound C of the trainable parameters' gradient.</summary>
    public double ClipNorm { get; init; } = 1.0;

    /// <summary>σ: the noise standard deviation over C. Set this or <see cref="TargetEpsilon"/>.</summary>
    public double? NoiseMultiplier { get; init; }

    /// <summary>The ε to reach at <see cref="Delta"/> after the planned steps; σ is calibrated from it.</summary>
    public double? TargetEpsilon { get; init; }

    public double Delta { get; init; } = 1e-5;

    /// <summary>Seed of the noise generator. Null (the default): drawn from the operating system's secure random
    /// source, so that the noise cannot be regenerated from a training seed that may be published. Give a seed only
    /// for reproducible experiments, and keep it secret: whoever knows it can subtract the noise.</summary>
    public ulong? NoiseSeed { get; init; }

    /// <summary>How per-example gradients are obtained (ghost clipping unless set).</summary>
    public DpPerExampleMode PerExample { get; init; } = DpPerExampleMode.Ghost;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public DpSgdOptions Validate()
    {
        var c = CultureInfo.InvariantCulture;
        if (!(ClipNorm > 0) || double.IsInfinity(ClipNorm)) throw new ArgumentException(string.Create(c, $"DP-SGD: clip norm C = {ClipNorm} must be finite and > 0"), nameof(ClipNorm));
        if (NoiseMultiplier is null == TargetEpsilon is null)
            throw new ArgumentException("DP-SGD: give either a noise multiplier or a target ε (not both, not neither)");
        if (NoiseMultiplier is double z && (!(z > 0) || double.IsInfinity(z)))
            throw new ArgumentException(string.Create(c, $"DP-SGD: noise multiplier σ = {z} must be finite and > 0"), nameof(NoiseMultiplier));
        if (TargetEpsilon is double e && (!(e > 0) || double.IsInfinity(e)))
            throw new ArgumentException(string.Create(c, $"DP-SGD: target ε = {e} must be finite and > 0"), nameof(TargetEpsilon));
        if (!(Delta > 0 && Delta < 1)) throw new ArgumentException(string.Create(c, $"DP-SGD: δ = {Delta} must be in (0, 1)"), nameof(Delta));
        return this;
    }
}

/// <summary>How <see cref="DpSgd"/> gets each example's clipped gradient.</summary>
public enum DpPerExampleMode
{
    /// <summary>One batched pass; per-example norms from the Linear layers' inputs and output gradients.</summary>
    Ghost,

    /// <summary>One forward and backward per example.</summary>
    Loop,
}
