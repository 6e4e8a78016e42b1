using EdgeTune.Training;

namespace EdgeTune.Tests.Training;

public class LrScheduleTests
{
    [Fact]
    public void WarmupThenCosineHitsHandValues()
    {
        var s = new LrSchedule(1.0, warmupSteps: 4, totalSteps: 14, LrScheduleKind.Cosine, minRatio: 0.1);
        Assert.Equal(0.25, s.At(0), 12);
        Assert.Equal(0.5, s.At(1), 12);
        Assert.Equal(1.0, s.At(3), 12);
        Assert.Equal(1.0, s.At(4), 12);                      // p = 0
        Assert.Equal(0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * 0.5)), s.At(9), 12); // p = 0.5 → 0.55
        Assert.Equal(0.55, s.At(9), 12);
        Assert.Equal(0.1, s.At(14), 12);                     // p = 1
        Assert.Equal(0.1, s.At(100), 12);                    // clamped
    }

    [Fact]
    public void LinearAndConstant()
    {
        var lin = new LrSchedule(2.0, 0, 10, LrScheduleKind.Linear, 0.0);
        Assert.Equal(2.0, lin.At(0), 12);
        Assert.Equal(1.0, lin.At(5), 12);
        Assert.Equal(0.2, lin.At(9), 12);
        var c = new LrSchedule(3.0, 2, 10, LrScheduleKind.Constant);
        Assert.Equal(1.5, c.At(0), 12);
        Assert.Equal(3.0, c.At(7), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LrSchedule(1, 0, 0));
    }
}
