using EdgeTune.Tensors;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Tests.Text.Datasets;

public class SequenceBatcherTests
{
    private static List<TrainingSequence> Seqs(int n, int t) =>
        Enumerable.Range(0, n).Select(i => new TrainingSequence(
            Enumerable.Range(0, t).Select(j => i * 100 + j).ToArray(),
            Enumerable.Range(0, t).Select(j => i * 100 + j + 1).ToArray(), 1)).ToList();

    [Fact]
    public void Epoch_CoversEverySequenceOnce_LastBatchPadded()
    {
        var b = new SequenceBatcher(Seqs(7, 3), batchSize: 3, seed: 1);
        Assert.Equal(3, b.BatchesPerEpoch);
        var firsts = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            var mb = b.Next();
            Assert.Equal((0, i), (mb.Epoch, mb.Index));
            for (int r = 0; r < mb.Rows; r++) firsts.Add(mb.Tokens[r * 3] / 100);
            if (i == 2)
            {
                Assert.Equal(1, mb.Rows);
                Assert.All(mb.Targets.Skip(3), t => Assert.Equal(CrossEntropy.IgnoreIndex, t));
            }
        }
        Assert.Equal(Enumerable.Range(0, 7), firsts.Order());
        Assert.NotEqual(Enumerable.Range(0, 7), firsts); // shuffled (fixed seed)
        var next = b.Next();
        Assert.Equal((1, 0), (next.Epoch, next.Index));
        var plain = new SequenceBatcher(Seqs(4, 2), 2, 1, shuffle: false);
        Assert.Equal([0, 1, 100, 101], plain.Next().Tokens);
    }

    [Fact]
    public void Resume_FromSavedState_GivesIdenticalBatches()
    {
        var seqs = Seqs(10, 4);
        var full = new SequenceBatcher(seqs, 3, seed: 42);
        var expected = Enumerable.Range(0, 15).Select(_ => full.Next()).ToList();

        foreach (int stopAt in new[] { 0, 3, 4, 7, 8, 14 })
        {
            var first = new SequenceBatcher(seqs, 3, seed: 42);
            for (int i = 0; i < stopAt; i++) Assert.Equal(expected[i].Tokens, first.Next().Tokens);
            string saved = first.State.ToJson();
            var resumed = new SequenceBatcher(seqs, 3, seed: 999); // the seed is overridden by the state
            resumed.Restore(BatcherState.FromJson(saved));
            Assert.Equal(stopAt, resumed.BatchesServed);
            for (int i = stopAt; i < 15; i++)
            {
                var mb = resumed.Next();
                Assert.Equal(expected[i].Tokens, mb.Tokens);
                Assert.Equal(expected[i].Targets, mb.Targets);
                Assert.Equal((expected[i].Epoch, expected[i].Index), (mb.Epoch, mb.Index));
            }
        }
    }

    [Fact]
    public void Restore_RejectsOtherData_AndBadBuffers()
    {
        var b = new SequenceBatcher(Seqs(5, 2), 2, 1);
        var other = new SequenceBatcher(Seqs(6, 2), 2, 1);
        Assert.Throws<ArgumentException>(() => b.Restore(other.State));
        Assert.Throws<ArgumentException>(() => b.Next(new int[3], new int[4]));
        Assert.Throws<ArgumentException>(() => new SequenceBatcher([], 2, 1));
        var ragged = new List<TrainingSequence> { new([1, 2], [2, 3], 1), new([1], [2], 1) };
        Assert.Throws<ArgumentException>(() => new SequenceBatcher(ragged, 2, 1));
    }

    [Fact]
    public void InOrder_ServesEverySequenceOnce_InOrder()
    {
        var seqs = Seqs(5, 2);
        var batches = SequenceBatcher.InOrder(seqs, 2, padId: 7).ToList();
        Assert.Equal(3, batches.Count);
        Assert.Equal([0, 1, 100, 101], batches[0].Tokens);
        Assert.Equal([400, 401, 7, 7], batches[2].Tokens);
        Assert.Equal(1, batches[2].Rows);
        Assert.Equal(5 * 2, batches.Sum(b => b.TrainedTokens));
        Assert.Empty(SequenceBatcher.InOrder([], 2));
    }
}
