using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Krum and Multi-Krum (Blanchard et al. 2017). With n updates of which at most f are Byzantine,
/// each update's score is the sum of squared L2 distances to its n − f − 2 nearest other updates;
/// Krum (m = 1) applies the lowest-scoring delta, Multi-Krum averages the m lowest-scoring deltas
/// weighted by example counts. Requires n ≥ f + 3 (at least one neighbour is scored) and m ≤ n − f.
/// Ties in score keep the earlier update.
/// Needs every update of the round at once, so it does not stream: the server holds all of a round's decoded
/// updates when the round closes (accepted clients × model length × 4 bytes); spilling them to disk is a later step.
/// </summary>
public sealed class KrumStrategy : IAggregationStrategy
{
    /// <param name="byzantine">f, the number of Byzantine clients tolerated (≥ 0).</param>
    /// <param name="select">m, how many updates are averaged (1 = Krum).</param>
    public KrumStrategy(int byzantine, int select = 1)
    {
        if (byzantine < 0) throw new ArgumentOutOfRangeException(nameof(byzantine), byzantine, "krum: f must be ≥ 0");
        if (select < 1) throw new ArgumentOutOfRangeException(nameof(select), select, "krum: m must be ≥ 1");
        Byzantine = byzantine;
        Select = select;
    }

    public int Byzantine { get; }
    public int Select { get; }

    public string Name => Select == 1 ? "krum" : "multi-krum";

    /// <summary>Each update's Krum score (sum of squared distances to its n − f − 2 nearest others).</summary>
    public double[] Scores(IReadOnlyList<ClientUpdate> updates)
    {
        int n = updates.Count, neighbours = n - Byzantine - 2;
        if (neighbours < 1)
            throw new ArgumentException($"{Name}: {n} updates with f = {Byzantine}; at least f + 3 = {Byzantine + 3} are needed");
        var dist = new double[n, n];
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++)
            {
                var x = updates[a].Delta; var y = updates[b].Delta;
                double s = 0;
                for (int i = 0; i < x.Length; i++) { double d = (double)x[i] - y[i]; s += d * d; }
                dist[a, b] = dist[b, a] = s;
            }
        var scores = new double[n];
        var row = new double[n - 1];
        for (int a = 0; a < n; a++)
        {
            int k = 0;
            for (int b = 0; b < n; b++) if (b != a) row[k++] = dist[a, b];
            Array.Sort(row);
            double s = 0;
            for (int j = 0; j < neighbours; j++) s += row[j];
            scores[a] = s;
        }
        return scores;
    }

    /// <summary>Indices of the m selected updates, best score first.</summary>
    public int[] SelectIndices(IReadOnlyList<ClientUpdate> updates)
    {
        var scores = Scores(updates);
        if (Select > updates.Count - Byzantine)
            throw new ArgumentException($"{Name}: m = {Select} exceeds n − f = {updates.Count - Byzantine}");
        return Enumerable.Range(0, updates.Count).OrderBy(i => scores[i]).ThenBy(i => i).Take(Select).ToArray();
    }

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates);
        var chosen = SelectIndices(updates).Select(i => updates[i]).ToList();
        return RoundChecks.Apply(global, RoundChecks.WeightedMeanDelta(global.Length, chosen));
    }
}
