using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>SiLU, Gelu, SwiGlu, Softmax and LogSoftmax on the tape: F64 against central
/// differences, F32 against F64, and inputs that need no gradient.</summary>
public class ActivationOpTests
{
    [Fact]
    public void SiLU()
    {
        using var x = GradCheck.Param("x", [3, 5], new Rng(1), scale: 3);
        Assert.Equal(15, OpCheck.Run([x], (t, p) => t.SiLU(p[0].Variable)));
    }

    [Theory]
    [InlineData(GeluApproximation.Exact)]
    [InlineData(GeluApproximation.Tanh)]
    public void Gelu(GeluApproximation approximation)
    {
        using var x = GradCheck.Param("x", [2, 7], new Rng(2), scale: 3);
        Assert.Equal(14, OpCheck.Run([x], (t, p) => t.Gelu(p[0].Variable, approximation)));
    }

    [Fact]
    public void SwiGluBothInputs()
    {
        var rng = new Rng(3);
        using var g = GradCheck.Param("g", [3, 7], rng, scale: 3);
        using var u = GradCheck.Param("u", [3, 7], rng, scale: 2);
        Assert.Equal(42, OpCheck.Run([g, u], (t, p) => t.SwiGlu(p[0].Variable, p[1].Variable)));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void SwiGluOneSideFrozen(bool gateTrainable, bool upTrainable)
    {
        var rng = new Rng(4);
        using var g = GradCheck.Param("g", [5], rng, gateTrainable, scale: 3);
        using var u = GradCheck.Param("u", [5], rng, upTrainable);
        Assert.Equal(5, OpCheck.Run([g, u], (t, p) => t.SwiGlu(p[0].Variable, p[1].Variable)));
        Assert.Null((gateTrainable ? u : g).Grad);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SoftmaxOverLastDimension(bool log)
    {
        using var x = GradCheck.Param("x", [2, 3, 5], new Rng(5), scale: 3);
        Assert.Equal(30, OpCheck.Run([x], (t, p) => log ? t.LogSoftmax(p[0].Variable) : t.Softmax(p[0].Variable)));
    }

    [Fact]
    public void SoftmaxRowsSumToOne()
    {
        using var x = GradCheck.Param("x", [4, 7], new Rng(6), scale: 5);
        using var tape = new Tape();
        var y = tape.Softmax(x.Variable).Value.ReadOnlySpan<double>();
        for (int r = 0; r < 4; r++)
        {
            double s = 0;
            for (int c = 0; c < 7; c++) s += y[r * 7 + c];
            Assert.Equal(1.0, s, 12);
        }
    }

    [Fact]
    public void FrozenInputsAreNotRecorded()
    {
        using var x = GradCheck.Param("x", [3, 4], new Rng(7), trainable: false);
        using var tape = new Tape();
        var y = tape.SwiGlu(tape.Gelu(tape.SiLU(x.Variable)), tape.LogSoftmax(x.Variable));
        Assert.False(y.RequiresGrad);
        Assert.Equal(0, tape.Count);
        Assert.Null(x.Grad);
    }

    [Fact]
    public void SwiGluRejectsMismatchedShapes()
    {
        var rng = new Rng(8);
        using var g = GradCheck.Param("gate", [2, 3], rng);
        using var u = GradCheck.Param("up", [3, 2], rng);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.SwiGlu(g.Variable, u.Variable));
        Assert.Contains("SwiGlu", e.Message);
        Assert.Contains("'up'", e.Message);
    }
}
