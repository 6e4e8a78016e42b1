namespace EdgeTune.Training.Evaluation;

/// <summary>Mean next-token loss and perplexity of a set of windows.</summary>
/// <param name="Loss">Mean cross-entropy (nats) over every scored position.</param>
/// <param name="Tokens">Scored positions.</param>
/// <param name="Windows">Windows evaluated.</param>
public sealed record EvalResult(double Loss, long Tokens, int Windows)
{
    /// <summary>exp(loss).</summary>
    public double Perplexity => Math.Exp(Loss);
}
