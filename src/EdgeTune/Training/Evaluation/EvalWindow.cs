namespace EdgeTune.Training.Evaluation;

/// <summary>
/// One evaluation row of a fixed length T: the model reads <see cref="Tokens"/> and is scored on
/// <see cref="Targets"/> (the next token at each position, or <see cref="Tensors.CrossEntropy.IgnoreIndex"/>
/// where nothing is scored: padding, prompt tokens of instruction data). Any data source (plain text,
/// JSONL, chat) produces these; <see cref="LossEvaluator"/> consumes them.
/// </summary>
public sealed record EvalWindow(int[] Tokens, int[] Targets)
{
    /// <summary>Positions that count towards the loss.</summary>
    public int ScoredCount
    {
        get
        {
            int n = 0;
            foreach (int t in Targets) if (t != Tensors.CrossEntropy.IgnoreIndex) n++;
            return n;
        }
    }
}
