using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Coordinate-wise median (Yin et al. 2018): each coordinate of the step is the median of the
/// clients' deltas there (mean of the two middle values for an even count). Unweighted; tolerates
/// fewer than half of the clients sending arbitrary values.
/// Needs every update of the round at once, so it does not stream: the server writes the round's decoded updates to a
/// scratch file when the round closes (accepted clients × model length × 4 bytes on disk) and aggregates them by
/// blocks of coordinates (<see cref="IColumnAggregator"/>), holding at most <see cref="UpdateBlocks.BudgetBytes"/> of them in memory.
/// </summary>
public sealed class MedianStrategy : IColumnAggregator
{
    public string Name => "median";

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates, needExamples: false);
        return Aggregate(round, global, UpdateBlocks.Of(updates));
    }

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IUpdateColumns updates)
    {
        RoundChecks.RequireColumns(Name, round, global.Length, updates, needExamples: false);
        int k = updates.Count;
        var column = new double[k];
        var step = new double[global.Length];
        UpdateBlocks.ForEach(updates, (start, n, block) =>
        {
            for (int j = 0; j < n; j++)
            {
                for (int c = 0; c < k; c++) column[c] = block[c * n + j];
                Array.Sort(column);
                step[start + j] = (k & 1) == 1 ? column[k / 2] : 0.5 * (column[k / 2 - 1] + column[k / 2]);
            }
        });
        return RoundChecks.Apply(global, step);
    }
}
