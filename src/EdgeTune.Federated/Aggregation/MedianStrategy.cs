using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Coordinate-wise median (Yin et al. 2018): each coordinate of the step is the median of the
/// clients' deltas there (mean of the two middle values for an even count). Unweighted; tolerates
/// fewer than half of the clients sending arbitrary values.
/// Needs every update of the round at once, so it does not stream: the server holds all of a round's decoded
/// updates when the round closes (accepted clients × model length × 4 bytes); spilling them to disk is a later step.
/// </summary>
public sealed class MedianStrategy : IAggregationStrategy
{
    public string Name => "median";

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates, needExamples: false);
        int k = updates.Count;
        var column = new double[k];
        var step = new double[global.Length];
        for (int i = 0; i < step.Length; i++)
        {
            for (int c = 0; c < k; c++) column[c] = updates[c].Delta[i];
            Array.Sort(column);
            step[i] = (k & 1) == 1 ? column[k / 2] : 0.5 * (column[k / 2 - 1] + column[k / 2]);
        }
        return RoundChecks.Apply(global, step);
    }
}
