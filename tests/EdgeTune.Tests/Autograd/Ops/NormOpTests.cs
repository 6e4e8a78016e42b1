using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>RmsNorm and LayerNorm on the tape: F64 against central differences, F32 against F64,
/// frozen inputs, bad shapes.</summary>
public class NormOpTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void RmsNorm(bool xTrainable, bool wTrainable)
    {
        var rng = new Rng(11);
        using var x = GradCheck.Param("x", [2, 3, 7], rng, xTrainable, scale: 2);
        using var w = OpCheck.Around("w", 7, rng);
        w.Trainable = wTrainable;
        int n = OpCheck.Run([x, w], (t, p) => t.RmsNorm(p[0].Variable, p[1].Variable, 1e-5));
        Assert.Equal((xTrainable ? 42 : 0) + (wTrainable ? 7 : 0), n);
    }

    [Theory]
    [InlineData(true, true, true)]
    [InlineData(true, false, true)]
    [InlineData(false, true, false)]
    public void LayerNorm(bool withBias, bool xTrainable, bool wTrainable)
    {
        var rng = new Rng(12);
        using var x = GradCheck.Param("x", [5, 3], rng, xTrainable, scale: 2);
        using var w = OpCheck.Around("w", 3, rng);
        using var b = GradCheck.Param("b", [3], rng);
        w.Trainable = wTrainable;
        Parameter[] ps = withBias ? [x, w, b] : [x, w];
        int n = OpCheck.Run(ps, (t, p) => t.LayerNorm(p[0].Variable, p[1].Variable, withBias ? p[2].Variable : null, 1e-5));
        Assert.Equal((xTrainable ? 15 : 0) + (wTrainable ? 3 : 0) + (withBias ? 3 : 0), n);
    }

    [Fact]
    public void RmsNormOutputHasUnitRmsForUnitWeight()
    {
        using var x = GradCheck.Param("x", [3, 9], new Rng(13), scale: 4);
        using var w = OpCheck.Around("w", 9, new Rng(14), spread: 0);
        using var tape = new Tape();
        var y = tape.RmsNorm(x.Variable, w, 0).Value.ReadOnlySpan<double>();
        for (int r = 0; r < 3; r++)
        {
            double ss = 0;
            for (int c = 0; c < 9; c++) ss += y[r * 9 + c] * y[r * 9 + c];
            Assert.Equal(1.0, ss / 9, 12);
        }
    }

    [Fact]
    public void WeightOfTheWrongLengthIsNamed()
    {
        var rng = new Rng(15);
        using var x = GradCheck.Param("x", [2, 4], rng);
        using var w = GradCheck.Param("norm.w", [5], rng);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.RmsNorm(x.Variable, w));
        Assert.Contains("RmsNorm", e.Message);
        Assert.Contains("'norm.w'", e.Message);
        e = Assert.Throws<ShapeException>(() => tape.LayerNorm(x.Variable, w));
        Assert.Contains("LayerNorm", e.Message);
    }
}
