using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Krum and Multi-Krum (Blanchard et al. 2017). With n updates of which at most f are Byzantine,
/// each update's score is the sum of squared L2 distances to its n − f − 2 nearest other updates;
/// Krum (m = 1) applies the lowest-scoring delta, Multi-Krum averages the m lowest-scoring deltas
/// weighted by example counts. Requires n ≥ f + 3 (at least one neighbour is scored) and m ≤ n − f.
/// Ties in score keep the earlier update.
/// Needs every update of the round at once, so it does not stream: the server writes the round's decoded updates to a
/// scratch file when the round closes (accepted clients × model length × 4 bytes on disk) and aggregates them by
/// blocks of coordinates (<see cref="IColumnAggregator"/>), holding at most <see cref="UpdateBlocks.BudgetBytes"/> of them in memory.
/// </summary>
public sealed class KrumStrategy : IColumnAggregator
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
    public double[] Scores(IReadOnlyList<ClientUpdate> updates) => Scores(UpdateBlocks.Of(updates));

    /// <summary>The scores from updates read as columns: the pairwise squared distances are summed block by block.</summary>
    public double[] Scores(IUpdateColumns updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        int n = updates.Count, neighbours = n - Byzantine - 2;
        if (neighbours < 1)
            throw new ArgumentException($"{Name}: {n} updates with f = {Byzantine}; at least f + 3 = {Byzantine + 3} are needed");
        var dist = new double[n, n];
        UpdateBlocks.ForEach(updates, (_, len, block) =>
        {
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                {
                    var x = block.AsSpan(a * len, len);
                    var y = block.AsSpan(b * len, len);
                    double s = 0;
                    for (int i = 0; i < len; i++) { double d = (double)x[i] - y[i]; s += d * d; }
                    dist[a, b] += s;
                }
        });
        var scores = new double[n];
        var row = new double[n - 1];
        for (int a = 0; a < n; a++)
        {
            int k = 0;
            for (int b = 0; b < n; b++) if (b != a) row[k++] = a < b ? dist[a, b] : dist[b, a];
            Array.Sort(row);
            double s = 0;
            for (int j = 0; j < neighbours; j++) s += row[j];
            scores[a] = s;
        }
        return scores;
    }

    /// <summary>Indices of the m selected updates, best score first.</summary>
    public int[] SelectIndices(IReadOnlyList<ClientUpdate> updates) => SelectIndices(UpdateBlocks.Of(updates));

    public int[] SelectIndices(IUpdateColumns updates)
    {
        var scores = Scores(updates);
        if (Select > updates.Count - Byzantine)
            throw new ArgumentException($"{Name}: m = {Select} exceeds n − f = {updates.Count - Byzantine}");
        return Enumerable.Range(0, updates.Count).OrderBy(i => scores[i]).ThenBy(i => i).Take(Select).ToArray();
    }

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates);
        return Aggregate(round, global, UpdateBlocks.Of(updates));
    }

    /// <summary>Selects by score, then takes the example-weighted mean of the chosen deltas block by block.</summary>
    public float[] Aggregate(int round, ReadOnlySpan<float> global, IUpdateColumns updates)
    {
        RoundChecks.RequireColumns(Name, round, global.Length, updates);
        var chosen = SelectIndices(updates);
        double total = chosen.Sum(c => (double)updates.NumExamples(c));
        var step = new double[global.Length];
        UpdateBlocks.ForEach(updates, (start, len, block) =>
        {
            foreach (int c in chosen)
            {
                double w = updates.NumExamples(c);
                for (int j = 0; j < len; j++) step[start + j] += w * block[c * len + j];
            }
        });
        for (int i = 0; i < step.Length; i++) step[i] /= total;
        return RoundChecks.Apply(global, step);
    }
}
