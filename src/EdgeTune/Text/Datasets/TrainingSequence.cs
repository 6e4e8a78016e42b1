using EdgeTune.Tensors;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// One training row of length T: <see cref="Tokens"/>[t] is the input at position t and <see cref="Targets"/>[t] the
/// token the model must predict there (the next token), or <see cref="CrossEntropy.IgnoreIndex"/> where no loss is
/// taken (prompt tokens, sample boundaries, padding). <see cref="Samples"/>: how many samples it holds.
/// </summary>
public sealed record TrainingSequence(int[] Tokens, int[] Targets, int Samples)
{
    public int Length => Tokens.Length;

    /// <summary>Positions that carry a loss.</summary>
    public int TrainedTokens => Targets.Count(t => t != CrossEntropy.IgnoreIndex);
}
