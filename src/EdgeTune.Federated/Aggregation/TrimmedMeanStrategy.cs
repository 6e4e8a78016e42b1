using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Coordinate-wise trimmed mean (Yin et al. 2018): at each coordinate the ⌊β·n⌋ largest and
/// ⌊β·n⌋ smallest client values are dropped and the rest averaged (unweighted). Tolerates up to
/// ⌊β·n⌋ clients sending arbitrary values.
/// Needs every update of the round at once, so it does not stream: the server writes the round's decoded updates to a
/// scratch file when the round closes (accepted clients × model length × 4 bytes on disk) and aggregates them by
/// blocks of coordinates (<see cref="IColumnAggregator"/>), holding at most <see cref="UpdateBlocks.BudgetBytes"/> of them in memory.
/// </summary>
public sealed class TrimmedMeanStrategy : IColumnAggregator
{
    /// <param name="beta">Fraction trimmed from each side, in [0, 0.5).</param>
    public TrimmedMeanStrategy(double beta = 0.1)
    {
        if (!(beta >= 0 && beta < 0.5)) throw new ArgumentOutOfRangeException(nameof(beta), beta, "trimmed-mean: β must be in [0, 0.5)");
        Beta = beta;
    }

    public double Beta { get; }

    public string Name => "trimmed-mean";

    /// <summary>How many values are dropped from each side with <paramref name="clients"/> updates.</summary>
    public int TrimCount(int clients) => (int)Math.Floor(Beta * clients);

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates, needExamples: false);
        return Aggregate(round, global, UpdateBlocks.Of(updates));
    }

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IUpdateColumns updates)
    {
        RoundChecks.RequireColumns(Name, round, global.Length, updates, needExamples: false);
        int n = updates.Count, trim = TrimCount(n), kept = n - 2 * trim;
        var column = new double[n];
        var step = new double[global.Length];
        UpdateBlocks.ForEach(updates, (start, len, block) =>
        {
            for (int j = 0; j < len; j++)
            {
                for (int c = 0; c < n; c++) column[c] = block[c * len + j];
                Array.Sort(column);
                double sum = 0;
                for (int c = trim; c < n - trim; c++) sum += column[c];
                step[start + j] = sum / kept;
            }
        });
        return RoundChecks.Apply(global, step);
    }
}
