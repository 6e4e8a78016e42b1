namespace EdgeTune.Generation;

/// <summary>How the next token is chosen from the logits.</summary>
/// <param name="Temperature">0 means greedy (arg max); otherwise logits are divided by it.</param>
/// <param name="TopK">Keep only the K most likely tokens (0 = off).</param>
/// <param name="TopP">Nucleus sampling: keep the smallest set whose probability reaches P (1 = off).</param>
/// <param name="MinP">Drop tokens whose probability is below MinP × the top probability (0 = off).</param>
/// <param name="RepetitionPenalty">Divides positive (multiplies negative) logits of tokens seen in the
/// last <paramref name="RepetitionWindow"/> tokens (1 = off), as in the CTRL paper.</param>
/// <param name="Seed">Seed of the sampler's random source.</param>
public sealed record SamplingOptions(
    float Temperature = 0.8f,
    int TopK = 0,
    float TopP = 0.95f,
    float MinP = 0f,
    float RepetitionPenalty = 1.0f,
    int RepetitionWindow = 64,
    ulong Seed = 1234)
{
    public static SamplingOptions Greedy { get; } = new(Temperature: 0f, TopP: 1f);

    /// <summary>Throws with the field name when a value is out of range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be a finite number >= 0");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top-k must be >= 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top-p must be in (0, 1]");
        if (!(MinP >= 0 && MinP < 1)) throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "min-p must be in [0, 1)");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "repetition penalty must be a finite number > 0");
        if (RepetitionWindow < 0) throw new ArgumentOutOfRangeException(nameof(RepetitionWindow), RepetitionWindow, "repetition window must be >= 0");
    }
}
