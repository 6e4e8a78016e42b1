namespace EdgeTune.Federated.Privacy;

/// <summary>Differential-privacy settings of a federated run.</summary>
public sealed record DifferentialPrivacyOptions
{
    public DpMode Mode { get; init; } = DpMode.Off;

    /// <summary>C: every client delta is scaled down to L2 norm ≤ C.</summary>
    public double ClipNorm { get; init; } = 1.0;

    /// <summary>z: the noise standard deviation is z·C.</summary>
    public double NoiseMultiplier { get; init; } = 1.0;

    /// <summary>q: the fraction of the client population sampled per round (for the accountant).</summary>
    public double SamplingRate { get; init; } = 1.0;

    /// <summary>δ for which ε is reported.</summary>
    public double Delta { get; init; } = 1e-5;

    /// <summary>Seed of the noise stream (mixed with the round number).</summary>
    public ulong Seed { get; init; } = 1;

    internal void Validate()
    {
        if (!(ClipNorm > 0) || double.IsInfinity(ClipNorm)) throw new ArgumentOutOfRangeException(nameof(ClipNorm), ClipNorm, "DP: clip norm C must be finite and > 0");
        if (!(NoiseMultiplier >= 0) || double.IsInfinity(NoiseMultiplier)) throw new ArgumentOutOfRangeException(nameof(NoiseMultiplier), NoiseMultiplier, "DP: noise multiplier z must be finite and ≥ 0");
        if (!(SamplingRate > 0 && SamplingRate <= 1)) throw new ArgumentOutOfRangeException(nameof(SamplingRate), SamplingRate, "DP: sampling rate q must be in (0, 1]");
        if (!(Delta > 0 && Delta < 1)) throw new ArgumentOutOfRangeException(nameof(Delta), Delta, "DP: δ must be in (0, 1)");
    }
}
