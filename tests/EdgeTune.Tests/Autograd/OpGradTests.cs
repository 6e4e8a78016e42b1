using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd;

/// <summary>Central-difference checks (F64) of every op on tiny shapes, and F32 against F64.</summary>
public class OpGradTests
{
    private static Variable Const(double[] values, params int[] shape) =>
        Variable.Constant(Tensor.From<double>(values, shape, "const"));

    [Fact]
    public void LinearWithBiasOnRank3Input()
    {
        var rng = new Rng(1);
        using var x = GradCheck.Param("x", [2, 3, 4], rng);
        using var w = GradCheck.Param("w", [5, 4], rng);
        using var b = GradCheck.Param("b", [5], rng);
        using var r = GradCheck.Param("r", [2, 3, 5], rng, trainable: false);
        int n = GradCheck.Check([x, w, b, r], t => t.Sum(t.Mul(t.Linear(x.Variable, w, b), r.Variable)));
        Assert.Equal(24 + 20 + 5, n);
    }

    [Fact]
    public void LinearWithoutBiasOddShapes()
    {
        var rng = new Rng(2);
        using var x = GradCheck.Param("x", [1, 7], rng, trainable: false);
        using var w = GradCheck.Param("w", [3, 7], rng);
        using var target = GradCheck.Param("target", [1, 3], rng, trainable: false);
        Assert.Equal(21, GradCheck.Check([x, w, target], t => t.MseLoss(t.Linear(x.Variable, w), target.Variable)));
    }

    [Fact]
    public void MatMul()
    {
        var rng = new Rng(3);
        using var a = GradCheck.Param("a", [3, 4], rng);
        using var b = GradCheck.Param("b", [4, 2], rng);
        using var r = GradCheck.Param("r", [3, 2], rng, trainable: false);
        Assert.Equal(20, GradCheck.Check([a, b, r], t => t.Sum(t.Mul(t.MatMul(a.Variable, b.Variable), r.Variable))));
    }

    [Fact]
    public void AddMulScaleMean()
    {
        var rng = new Rng(4);
        using var a = GradCheck.Param("a", [2, 3], rng);
        using var b = GradCheck.Param("b", [2, 3], rng);
        // mean(3·(a+b) ⊙ a ⊙ a): a reaches the output three times, so its gradient must accumulate
        Assert.Equal(12, GradCheck.Check([a, b], t =>
            t.Mean(t.Mul(t.Mul(t.Scale(t.Add(a.Variable, b.Variable), 3.0), a.Variable), a.Variable))));
    }

    [Fact]
    public void MseLossBothSidesTrainable()
    {
        var rng = new Rng(5);
        using var p = GradCheck.Param("pred", [7], rng);
        using var q = GradCheck.Param("target", [7], rng);
        Assert.Equal(14, GradCheck.Check([p, q], t => t.MseLoss(p.Variable, q.Variable)));
    }

    [Fact]
    public void ReshapeIntoLinearWithFrozenWeight()
    {
        var rng = new Rng(10);
        using var x = GradCheck.Param("x", [2, 6], rng);
        using var w = GradCheck.Param("w", [2, 3], rng, trainable: false);
        using var r = GradCheck.Param("r", [4, 2], rng, trainable: false);
        Assert.Equal(12, GradCheck.Check([x, w, r], t =>
            t.Sum(t.Mul(t.Linear(t.Reshape(x.Variable, 4, 3), w.Variable), r.Variable))));
    }

    [Fact]
    public void ReshapeIsAViewAndChecksCount()
    {
        using var x = new Parameter("x", Tensor.From<float>([1, 2, 3, 4, 5, 6], [2, 3], "x"));
        using var tape = new Tape();
        var y = tape.Reshape(x.Variable, 3, 2);
        Assert.Equal([3, 2], y.Shape.ToArray());
        x.Value.Span<float>()[0] = 9;
        Assert.Equal(9f, y.Value.ToFloatArray()[0]);
        var e = Assert.Throws<ShapeException>(() => tape.Reshape(x.Variable, 4, 2));
        Assert.Contains("Reshape", e.Message);
        Assert.Contains("'x'", e.Message);
        tape.Reset();
        Assert.Equal(9f, x.Value.ToFloatArray()[0]); // disposing the view left x's storage alone
    }

    [Fact]
    public void ComposedLinearMulLinearSum()
    {
        var rng = new Rng(6);
        using var x = GradCheck.Param("x", [3, 4], rng, trainable: false);
        using var w1 = GradCheck.Param("w1", [5, 4], rng);
        using var b1 = GradCheck.Param("b1", [5], rng);
        using var gate = GradCheck.Param("gate", [3, 5], rng);
        using var w2 = GradCheck.Param("w2", [2, 5], rng);
        int n = GradCheck.Check([x, w1, b1, gate, w2], t =>
        {
            var h = t.Linear(x.Variable, w1, b1);
            var g = t.Mul(h, gate.Variable);
            var y = t.Linear(g, w2);
            return t.Sum(t.Mul(y, y));
        });
        Assert.Equal(20 + 5 + 15 + 10, n);
    }

    [Fact]
    public void CheckerDetectsAWrongGradient()
    {
        // the checker itself must fail when an op's backward is wrong
        var rng = new Rng(7);
        using var a = GradCheck.Param("a", [4], rng);
        Assert.Throws<Xunit.Sdk.XunitException>(() =>
            GradCheck.Check([a], t => t.Sum(t.Apply(new WrongSquareOp(a.Variable)))));
    }

    [Fact]
    public void F32PathsMatchF64()
    {
        var rng = new Rng(8);
        var x = new double[3 * 4]; var w = new double[5 * 4]; var b = new double[5]; var r = new double[3 * 5];
        foreach (var arr in new[] { x, w, b, r }) for (int i = 0; i < arr.Length; i++) arr[i] = 2 * rng.NextDouble() - 1;

        (double loss, float[][] grads) Run(DType dt)
        {
            Parameter P(string name, double[] v, int[] shape)
            {
                using var d = Tensor.From<double>(v, shape, name);
                return new Parameter(name, d.To(dt));
            }
            using var px = P("x", x, [3, 4]); using var pw = P("w", w, [5, 4]); using var pb = P("b", b, [5]);
            using var pr = P("r", r, [3, 5]);
            using var tape = new Tape();
            var h = tape.Linear(px.Variable, pw, pb);
            var y = tape.MatMul(tape.Mul(h, pr.Variable), tape.Scale(pw.Variable, 0.5));
            double loss = tape.Backward(tape.Add(tape.Mean(y), tape.MseLoss(h, pr.Variable)));
            return (loss, [px.Grad!.ToFloatArray(), pw.Grad!.ToFloatArray(), pb.Grad!.ToFloatArray(), pr.Grad!.ToFloatArray()]);
        }

        var (l32, g32) = Run(DType.F32);
        var (l64, g64) = Run(DType.F64);
        Assert.Equal(l64, l32, 1e-5);
        for (int k = 0; k < g32.Length; k++)
            for (int i = 0; i < g32[k].Length; i++)
                Assert.True(Math.Abs(g32[k][i] - g64[k][i]) <= 1e-5 + 1e-5 * Math.Abs(g64[k][i]), $"grad {k}[{i}]: {g32[k][i]} vs {g64[k][i]}");
    }

    [Fact]
    public void LinearWithFrozenBf16WeightMatchesF32Weight()
    {
        var rng = new Rng(9);
        var xs = new float[2 * 6]; var ws = new float[3 * 6];
        rng.FillUniform(xs, -1, 1); rng.FillUniform(ws, -1, 1);
        using var w32 = Tensor.From<float>(ws, [3, 6], "w");
        using var wbf = w32.To(DType.BF16);
        using var wWide = wbf.To(DType.F32); // the exact values the BF16 kernel sees

        float[] Grad(Tensor weight, out float[] y)
        {
            using var x = new Parameter("x", Tensor.From<float>(xs, [2, 6], "x"));
            using var w = new Parameter("w", weight, trainable: false, ownsValue: false);
            using var tape = new Tape();
            var lin = tape.Linear(x.Variable, w);
            y = lin.Value.ToFloatArray();
            tape.Backward(tape.Sum(tape.Mul(lin, lin)));
            Assert.Null(w.Grad);
            return x.Grad!.ToFloatArray();
        }

        float[] gBf = Grad(wbf, out float[] yBf);
        float[] gRef = Grad(wWide, out float[] yRef);
        Assert.Equal(yRef, yBf);
        Assert.Equal(gRef, gBf);
    }

    /// <summary>A deliberately wrong op (d/dx x² written as x instead of 2x) for the checker's own test.</summary>
    private sealed class WrongSquareOp(Variable x) : TapeOp("WrongSquare", x)
    {
        private readonly Variable _x = x;
        private Variable _y = null!;

        protected internal override void Forward(Tape tape)
        {
            _y = NewOutput(tape, _x.DType, _x.Shape, "sq");
            var xs = _x.Value.ReadOnlySpan<double>(); var ys = _y.Value.Span<double>();
            for (int i = 0; i < xs.Length; i++) ys[i] = xs[i] * xs[i];
        }

        protected internal override void Backward()
        {
            if (GradOf(_x) is not { } dx) return;
            var d = dx.Span<double>(); var g = _y.Grad!.ReadOnlySpan<double>(); var xs = _x.Value.ReadOnlySpan<double>();
            for (int i = 0; i < d.Length; i++) d[i] += g[i] * xs[i];
        }
    }
}
