using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>CrossEntropy and the fused LmHeadCrossEntropy on the tape: mean over counted rows,
/// ignored rows, trainable and frozen (F16/BF16) heads, non-finite inputs.</summary>
public class CrossEntropyOpTests
{
    private const int Ignore = CrossEntropy.IgnoreIndex;

    [Fact]
    public void LogitsGradientIsMeanOverCountedRows()
    {
        using var logits = GradCheck.Param("logits", [2, 3, 5], new Rng(51), scale: 3);
        int[] targets = [4, Ignore, 0, 2, 2, Ignore];
        Assert.Equal(30, OpCheck.Run([logits], (t, p) => t.CrossEntropy(p[0].Variable, targets)));
    }

    [Fact]
    public void MatchesLogSoftmaxPickedByHand()
    {
        using var logits = GradCheck.Param("logits", [3, 4], new Rng(52), scale: 2);
        int[] targets = [1, Ignore, 3];
        using var tape = new Tape();
        double loss = tape.CrossEntropy(logits.Variable, targets).Item();
        var ls = tape.LogSoftmax(logits.Variable).Value.ReadOnlySpan<double>();
        Assert.Equal(-(ls[0 * 4 + 1] + ls[2 * 4 + 3]) / 2, loss, 12);
    }

    [Fact]
    public void I32TargetsAndAllIgnored()
    {
        using var logits = GradCheck.Param("logits", [2, 3], new Rng(53));
        using var targets = Tensor.From<int>([Ignore, Ignore], [2], "targets");
        using var tape = new Tape();
        var loss = tape.CrossEntropy(logits.Variable, targets);
        Assert.Equal(0.0, loss.Item());
        tape.Backward(loss);
        Assert.All(logits.Grad!.ReadOnlySpan<double>().ToArray(), g => Assert.Equal(0.0, g));
    }

    [Theory]
    [InlineData(true, true, 2)]
    [InlineData(true, false, 3)]
    [InlineData(false, true, 64)]
    public void LmHeadGradients(bool xTrainable, bool wTrainable, int chunk)
    {
        var rng = new Rng(54);
        using var x = GradCheck.Param("x", [2, 3, 4], rng, xTrainable);
        using var w = GradCheck.Param("w", [7, 4], rng, wTrainable);
        int[] targets = [6, 0, Ignore, 3, 3, 1];
        int n = OpCheck.Run([x, w], (t, p) => t.LmHeadCrossEntropy(p[0].Variable, p[1].Variable, targets, chunk));
        Assert.Equal((xTrainable ? 24 : 0) + (wTrainable ? 28 : 0), n);
    }

    [Fact]
    public void LmHeadEqualsLinearThenCrossEntropy()
    {
        var rng = new Rng(55);
        using var x = GradCheck.Param("x", [5, 3], rng);
        using var w = GradCheck.Param("w", [9, 3], rng);
        int[] targets = [8, 0, 4, Ignore, 2];
        using var tape = new Tape();
        double fused = tape.LmHeadCrossEntropy(x.Variable, w, targets).Item();
        double plain = tape.CrossEntropy(tape.Linear(x.Variable, w), targets).Item();
        Assert.Equal(plain, fused, 12);
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void FrozenHalfHeadMatchesF32Head(DType dtype)
    {
        var rng = new Rng(56);
        using var x64 = GradCheck.Param("x", [3, 4], rng);
        using var w64 = GradCheck.Param("w", [6, 4], rng, trainable: false);
        using var x = OpCheck.ToF32(x64);
        using var w32 = OpCheck.ToF32(w64);
        using var w16 = new Parameter("w16", w32.Value.To(dtype), trainable: false);
        using var wRounded = new Parameter("wr", w16.Value.To(DType.F32), trainable: false);
        int[] targets = [5, 0, 2];
        double[] Run(Parameter w, out double loss)
        {
            x.ZeroGrad();
            using var tape = new Tape();
            loss = tape.Backward(tape.LmHeadCrossEntropy(x.Variable, w, targets, chunk: 4));
            Assert.Null(w.Grad);
            return OpCheck.Values(x.Grad!);
        }
        double[] g16 = Run(w16, out double l16), gr = Run(wRounded, out double lr);
        Assert.Equal(lr, l16, 5);
        OpCheck.Close("dx", gr, g16, 1e-5, 1e-6);
    }

    [Fact]
    public void NonFiniteInputRaisesNonFiniteException()
    {
        var rng = new Rng(57);
        using var x64 = GradCheck.Param("hidden", [2, 3], rng);
        using var x = OpCheck.ToF32(x64);
        using var w = OpCheck.ToF32(GradCheck.Param("w", [4, 3], rng));
        x.Value.Span<float>()[4] = float.NaN;
        using var tape = new Tape();
        var e = Assert.Throws<NonFiniteException>(() => tape.LmHeadCrossEntropy(x.Variable, w, [1, 2]));
        Assert.Equal("LmHeadCrossEntropy", e.Op);
        Assert.Throws<NonFiniteException>(() => tape.CrossEntropy(x.Variable, [1, 2]));
        x64.Value.Span<double>()[1] = double.PositiveInfinity;
        Assert.Throws<NonFiniteException>(() => tape.CrossEntropy(x64.Variable, [0, 2]));
    }

    [Fact]
    public void TargetOutsideVocabularyIsRejected()
    {
        using var logits = GradCheck.Param("logits", [2, 3], new Rng(58));
        using var tape = new Tape();
        Assert.Throws<ShapeException>(() => tape.CrossEntropy(logits.Variable, [0, 3]));
        Assert.Throws<ShapeException>(() => tape.CrossEntropy(logits.Variable, [0]));
    }
}
