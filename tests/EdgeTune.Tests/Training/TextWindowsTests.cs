using EdgeTune.Tensors;
using EdgeTune.Training.Evaluation;

namespace EdgeTune.Tests.Training;

public class TextWindowsTests
{
    [Fact]
    public void EveryIdAfterTheFirstIsScoredOnceAndTheTailIsPadded()
    {
        int[] ids = Enumerable.Range(10, 11).ToArray(); // 10..20: 10 targets
        var w = TextWindows.Create(ids, 4, padId: 99);
        Assert.Equal(3, w.Count);
        Assert.Equal([10, 11, 12, 13], w[0].Tokens);
        Assert.Equal([11, 12, 13, 14], w[0].Targets);
        Assert.Equal([18, 19, 99, 99], w[2].Tokens);
        Assert.Equal([19, 20, CrossEntropy.IgnoreIndex, CrossEntropy.IgnoreIndex], w[2].Targets);
        Assert.Equal(10, w.Sum(x => x.ScoredCount));
    }

    [Fact]
    public void FewerThanTwoIdsGiveNoWindow()
    {
        Assert.Empty(TextWindows.Create([5], 8));
        Assert.Empty(TextWindows.Create([], 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => TextWindows.Create([1, 2], 0));
    }
}
