using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Storage;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Aggregation;

/// <summary>Robust strategies read updates by blocks of coordinates: from a scratch file they give what a scalar
/// reference over the whole vectors gives, also when the updates span several blocks.</summary>
public sealed class ColumnAggregationTests
{
    /// <summary>Five updates of an odd length over the 16 MiB block budget: three blocks, the last one short.</summary>
    private static (List<ClientUpdate> Updates, float[] Global) Data(int length)
    {
        var rng = new Rng(77);
        var updates = Enumerable.Range(0, 5).Select(c =>
        {
            var d = new float[length];
            rng.FillGaussian(d, 0, 1);
            return new ClientUpdate($"c{c}", d, 10 + c);
        }).ToList();
        var global = new float[length];
        rng.FillGaussian(global, 0, 1);
        return (updates, global);
    }

    private static UpdateSpill Spill(string path, List<ClientUpdate> updates)
    {
        var spill = new UpdateSpill(path, updates[0].Delta.Length);
        foreach (var u in updates) spill.Append(u.ClientId, u.NumExamples, u.Delta);
        return spill;
    }

    [Fact]
    public void MedianTrimmedMeanAndKrumFromASpillMatchScalarReferences()
    {
        int length = (int)(2 * UpdateBlocks.BudgetBytes / (4 * 5)) + 12_345;
        Assert.True(UpdateBlocks.Length(5, length) < length / 2); // several blocks
        var (updates, global) = Data(length);
        string path = Path.Combine(Path.GetTempPath(), "edgetune-spill-" + Guid.NewGuid().ToString("N")[..10]);
        using (var spill = Spill(path, updates))
        {
            var median = new MedianStrategy().Aggregate(1, global, spill);
            var trimmed = new TrimmedMeanStrategy(0.2).Aggregate(1, global, spill);
            var krum = new KrumStrategy(byzantine: 1, select: 2);
            var multiKrum = krum.Aggregate(1, global, spill);
            var column = new double[5];
            for (int i = 0; i < length; i += 997)
            {
                for (int c = 0; c < 5; c++) column[c] = updates[c].Delta[i];
                Array.Sort(column);
                Assert.Equal((float)(global[i] + column[2]), median[i]);
                Assert.Equal((float)(global[i] + (column[1] + column[2] + column[3]) / 3), trimmed[i]);
            }
            // Krum reference: whole-vector squared distances, n − f − 2 = 2 nearest neighbours
            var dist = new double[5, 5];
            for (int a = 0; a < 5; a++)
                for (int b = 0; b < 5; b++)
                    for (int i = 0; i < length; i++) { double d = (double)updates[a].Delta[i] - updates[b].Delta[i]; dist[a, b] += d * d; }
            var scores = Enumerable.Range(0, 5).Select(a => Enumerable.Range(0, 5).Where(b => b != a).Select(b => dist[a, b]).Order().Take(2).Sum()).ToArray();
            var columnScores = krum.Scores(spill);
            for (int a = 0; a < 5; a++) Assert.Equal(scores[a], columnScores[a], scores[a] * 1e-12);
            var chosen = Enumerable.Range(0, 5).OrderBy(a => scores[a]).ThenBy(a => a).Take(2).ToArray();
            Assert.Equal(chosen, krum.SelectIndices(spill));
            double w = chosen.Sum(c => (double)updates[c].NumExamples);
            for (int i = 0; i < length; i += 997)
                Assert.Equal((float)(global[i] + chosen.Sum(c => updates[c].NumExamples * (double)updates[c].Delta[i]) / w), multiKrum[i]);
            // the list form runs the same code
            Assert.Equal(median, new MedianStrategy().Aggregate(1, global, updates));
        }
        Assert.False(File.Exists(path)); // the scratch file goes with the spill
    }

    [Fact]
    public void ASpillRefusesAWrongLengthAndOutOfRangeBlocks()
    {
        string path = Path.Combine(Path.GetTempPath(), "edgetune-spill-" + Guid.NewGuid().ToString("N")[..10]);
        using var spill = new UpdateSpill(path, 10);
        Assert.Throws<ArgumentException>(() => spill.Append("a", 1, new float[9]));
        spill.Append("a", 1, new float[10]);
        Assert.Throws<ArgumentOutOfRangeException>(() => spill.Read(5, 6, new float[6]));
        Assert.Throws<ShapeException>(() => new MedianStrategy().Aggregate(1, new float[11], spill));
    }
}
