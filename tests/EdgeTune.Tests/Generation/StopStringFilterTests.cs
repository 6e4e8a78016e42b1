using EdgeTune.Generation;

namespace EdgeTune.Tests.Generation;

public class StopStringFilterTests
{
    [Fact]
    public void StopSplitAcrossPiecesIsNeverEmitted()
    {
        var f = new StopStringFilter(["</end>"]);
        string emitted = f.Push("Hello <", out bool s1) + f.Push("/en", out bool s2);
        Assert.False(s1 || s2);
        Assert.Equal("Hello ", emitted); // "</en" is held back: it may begin the stop string
        Assert.Equal("", f.Push("d> tail", out bool s3));
        Assert.True(s3);
    }

    [Fact]
    public void HeldTextIsReleasedWhenItTurnsOutNotToBeAStop()
    {
        var f = new StopStringFilter(["\n\n"]);
        Assert.Equal("a", f.Push("a\n", out _));
        Assert.Equal("\nb", f.Push("b", out bool stopped));
        Assert.False(stopped);
        Assert.Equal("c", f.Push("c\n", out _) + f.Flush()[..0]);
    }

    [Fact]
    public void EarliestOfSeveralStopsWins()
    {
        var f = new StopStringFilter(["xyz", "b"]);
        Assert.Equal("a", f.Push("abxyz", out bool stopped));
        Assert.True(stopped);
    }
}
