using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>Rope on the tape: out of place, both pairings, batches, explicit positions, partial rotary.</summary>
public class RopeOpTests
{
    private static readonly RopeTable Full = new(16, 6, theta: 100);
    private static readonly RopeTable Partial = new(16, 4, theta: 100);

    [Theory]
    [InlineData(RopeStyle.Interleaved, false)]
    [InlineData(RopeStyle.HalfSplit, false)]
    [InlineData(RopeStyle.Interleaved, true)]
    [InlineData(RopeStyle.HalfSplit, true)]
    public void BatchedWithOffset(RopeStyle style, bool partial)
    {
        using var x = GradCheck.Param("x", [2, 3, 2, 6], new Rng(31));
        Assert.Equal(72, OpCheck.Run([x], (t, p) => t.Rope(p[0].Variable, partial ? Partial : Full, style, pos0: 5)));
    }

    [Theory]
    [InlineData(RopeStyle.Interleaved)]
    [InlineData(RopeStyle.HalfSplit)]
    public void ExplicitPositionsPerRow(RopeStyle style)
    {
        using var x = GradCheck.Param("x", [2, 3, 1, 6], new Rng(32));
        int[] positions = [3, 0, 9, 15, 2, 2];
        Assert.Equal(36, OpCheck.Run([x], (t, p) => t.Rope(p[0].Variable, Full, style, positions)));
    }

    [Fact]
    public void OutOfPlaceAndMatchesTheKernel()
    {
        using var x = GradCheck.Param("x", [4, 3, 6], new Rng(33));
        using var x32 = OpCheck.ToF32(x);
        float[] before = x32.Value.ToFloatArray();
        float[] expected = (float[])before.Clone();
        Rope.Forward(expected, 4, 3, 6, 2, Full, RopeStyle.HalfSplit);
        using var tape = new Tape();
        var y = tape.Rope(x32.Variable, Full, RopeStyle.HalfSplit, 2);
        Assert.Equal(expected, y.Value.ToFloatArray());
        Assert.Equal(before, x32.Value.ToFloatArray());
    }

    [Fact]
    public void WrongPositionCountIsNamed()
    {
        using var x = GradCheck.Param("q", [2, 3, 1, 6], new Rng(34));
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.Rope(x.Variable, Full, RopeStyle.Interleaved, [1, 2]));
        Assert.Contains("Rope", e.Message);
        Assert.Contains("'q'", e.Message);
    }
}
