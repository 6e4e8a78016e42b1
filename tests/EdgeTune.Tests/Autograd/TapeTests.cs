using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd;

public class TapeTests
{
    private static Parameter P(string name, float[] values, int[] shape, bool trainable = true) =>
        new(name, Tensor.From<float>(values, shape, name), trainable);

    [Fact]
    public void FrozenParameterGetsNoGradientAndNoBackwardWork()
    {
        using var x = P("x", [1, 2, 3], [1, 3], trainable: false);
        using var w = P("w", [1, 0, 0, 0, 1, 0], [2, 3], trainable: false);
        using var tape = new Tape();
        var y = tape.Linear(x.Variable, w);
        Assert.False(y.RequiresGrad);
        Assert.Equal(0, tape.Count); // nothing requires a gradient: nothing recorded
        Assert.Equal([1f, 2f], y.Value.ToFloatArray());

        using var v = P("v", [1, 1, 1, 1, 1, 1], [2, 3]);
        var z = tape.Sum(tape.Linear(x.Variable, v));
        Assert.Equal(2, tape.Count);
        tape.Backward(z);
        Assert.Null(x.Grad);
        Assert.Null(w.Grad);
        Assert.Equal([1f, 2, 3, 1, 2, 3], v.Grad!.ToFloatArray());
    }

    [Fact]
    public void TrainableToggleAllocatesAndFreesGradient()
    {
        using var p = P("p", [1, 2], [2], trainable: false);
        Assert.Null(p.Grad);
        Assert.False(p.Variable.RequiresGrad);
        p.Trainable = true;
        Assert.Equal([0f, 0f], p.Grad!.ToFloatArray());
        Assert.True(p.Variable.RequiresGrad);
        p.Trainable = false;
        Assert.Null(p.Grad);
    }

    [Fact]
    public void BackwardAccumulatesUntilZeroed()
    {
        using var a = P("a", [1, -2, 3], [3]);
        using var b = P("b", [4, 5, -6], [3]);
        float[] Step()
        {
            using var tape = new Tape();
            tape.Backward(tape.Sum(tape.Mul(a.Variable, b.Variable)));
            return a.Grad!.ToFloatArray();
        }
        Assert.Equal([4f, 5, -6], Step());
        Assert.Equal([8f, 10, -12], Step());
        Assert.Equal([2f, -4, 6], b.Grad!.ToFloatArray());
        a.ZeroGrad();
        Assert.Equal([4f, 5, -6], Step());
    }

    [Fact]
    public void BackwardFreesIntermediatesAndReturnsLoss()
    {
        using var a = P("a", [1, 2], [2]);
        var tape = new Tape();
        var sq = tape.Mul(a.Variable, a.Variable);
        var loss = tape.Sum(sq);
        Assert.Equal(2, tape.OwnedCount);
        double value = tape.Backward(loss);
        Assert.Equal(5.0, value);
        Assert.Equal(0, tape.Count);
        Assert.Equal(0, tape.OwnedCount);
        Assert.Throws<ObjectDisposedException>(() => sq.Value.ToFloatArray());
        // a freed variable cannot enter a new graph
        var e = Assert.Throws<InvalidOperationException>(() => tape.Sum(sq));
        Assert.Contains("Sum", e.Message);
        Assert.Equal([2f, 4f], a.Grad!.ToFloatArray());
    }

    [Fact]
    public void IntermediateGradientsAreFreedAsSoonAsTheirProducerRan()
    {
        using var a = P("a", [1, 2], [2]);
        using var tape = new Tape();
        var probe = new ProbeOp(a.Variable);
        var p = tape.Apply(probe);
        var y1 = tape.Scale(p, 2);
        var y2 = tape.Scale(y1, 3);
        probe.Watch = [y1, y2];
        tape.Backward(tape.Sum(y2));
        Assert.Equal([false, false], probe.SeenAlive); // both freed before the probe's backward ran
        Assert.Equal([true, true], probe.ValueFreed);   // and so were their values
        Assert.True(probe.OwnGradSeen);
        Assert.Equal([6f, 6f], a.Grad!.ToFloatArray());
    }

    /// <summary>Identity op that records, during its backward, which watched gradients still exist.</summary>
    private sealed class ProbeOp(Variable x) : TapeOp("Probe", x)
    {
        private readonly Variable _x = x;
        private Variable _y = null!;
        public Variable[] Watch = [];
        public bool[] SeenAlive = [];
        public bool[] ValueFreed = [];
        public bool OwnGradSeen;

        protected internal override void Forward(Tape tape)
        {
            _y = NewOutput(tape, _x.DType, _x.Shape, "probe");
            _x.Value.ReadOnlySpan<float>().CopyTo(_y.Value.Span<float>());
        }

        protected internal override void Backward()
        {
            SeenAlive = Watch.Select(w => w.Grad is not null).ToArray();
            ValueFreed = Watch.Select(w => w.Value.Storage.IsDisposed).ToArray();
            OwnGradSeen = _y.Grad is not null;
            if (GradOf(_x) is { } dx)
                System.Numerics.Tensors.TensorPrimitives.Add(dx.Span<float>(), _y.Grad!.ReadOnlySpan<float>(), dx.Span<float>());
        }
    }

    [Fact]
    public void AnOpInstanceIsAppliedOnce()
    {
        using var a = P("a", [1, 2], [2]);
        using var tape = new Tape();
        var op = new SumOp(a.Variable);
        tape.Apply(op);
        Assert.Throws<InvalidOperationException>(() => tape.Apply(op));
    }

    [Fact]
    public void LeafVariableReceivesGradient()
    {
        using var xt = Tensor.From<float>([3, 4], [2], "x");
        using var x = Variable.Leaf(xt);
        using var tape = new Tape();
        tape.Backward(tape.Scale(tape.Sum(x), 2.5));
        Assert.Equal([2.5f, 2.5f], x.Grad!.ToFloatArray());
        Assert.Equal([3f, 4f], xt.ToFloatArray()); // caller-owned value survives the tape
    }

    [Fact]
    public void UnusedBranchIsSkipped()
    {
        using var a = P("a", [1, 2], [2]);
        using var c = P("c", [5, 5], [2]);
        using var tape = new Tape();
        _ = tape.Mul(c.Variable, c.Variable); // recorded, but never reaches the loss
        tape.Backward(tape.Sum(a.Variable));
        Assert.Equal([0f, 0f], c.Grad!.ToFloatArray());
        Assert.Equal([1f, 1f], a.Grad!.ToFloatArray());
    }

    [Fact]
    public void NonFiniteLossNamesTheOp()
    {
        using var p = P("pred", [1, float.NaN], [2]);
        using var t = P("target", [0, 0], [2], trainable: false);
        using var tape = new Tape();
        var e = Assert.Throws<NonFiniteException>(() => tape.MseLoss(p.Variable, t.Variable));
        Assert.Contains("MseLoss", e.Message);
        Assert.Equal("MseLoss", e.Op);

        using var q = P("q", [float.PositiveInfinity, 1], [2]);
        var e2 = Assert.Throws<NonFiniteException>(() => tape.Backward(tape.Sum(q.Variable)));
        Assert.Equal("Sum", e2.Op);
        Assert.Contains("sum", e2.Message);
        Assert.Equal(0, tape.OwnedCount); // a failed backward still frees the tape
        Assert.Equal([0f, 0f], q.Grad!.ToFloatArray());
    }

    [Fact]
    public void ShapeMismatchesNameOpTensorsAndShapes()
    {
        using var a = P("a", new float[6], [2, 3]);
        using var b = P("b", new float[6], [3, 2]);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.Add(a.Variable, b.Variable));
        Assert.Contains("Add", e.Message);
        Assert.Contains("'a' [2, 3]", e.Message);
        Assert.Contains("'b' [3, 2]", e.Message);

        var e2 = Assert.Throws<ShapeException>(() => tape.Linear(a.Variable, b));
        Assert.Contains("Linear", e2.Message);
        Assert.Contains("'a' [2, 3]", e2.Message);
        Assert.Contains("'b' [3, 2]", e2.Message);

        using var d = new Parameter("d", Tensor.Zeros(DType.F64, [2, 3], "d"));
        var e3 = Assert.Throws<ShapeException>(() => tape.Mul(a.Variable, d.Variable));
        Assert.Contains("F64", e3.Message);

        var e4 = Assert.Throws<ShapeException>(() => tape.MatMul(a.Variable, a.Variable));
        Assert.Contains("MatMul", e4.Message);

        var e5 = Assert.Throws<ShapeException>(() => tape.Backward(tape.Mul(a.Variable, a.Variable)));
        Assert.Contains("single value", e5.Message);
    }

    [Fact]
    public void BackwardWithoutTrainableInputsIsAnError()
    {
        using var a = P("a", [1, 2], [2], trainable: false);
        using var tape = new Tape();
        Assert.Throws<InvalidOperationException>(() => tape.Backward(tape.Sum(a.Variable)));
    }

    [Fact]
    public void ParameterCollectionNamesGlobsAndCounts()
    {
        using var ps = new ParameterCollection([
            P("layers.0.wq", new float[4], [2, 2]),
            P("layers.0.norm", new float[2], [2]),
            P("layers.1.wq", new float[4], [2, 2]),
        ]);
        Assert.Throws<ArgumentException>(() => ps.Add(P("layers.0.wq", [0], [1])));
        Assert.Equal(10, ps.ElementCount);
        Assert.Equal(2, ps.SetTrainable("*.norm", false) + ps.SetTrainable("layers.1.*", false));
        Assert.Equal(["layers.0.wq"], ps.Trainable.Select(p => p.Name));
        Assert.Equal(4, ps.TrainableElementCount);
        Assert.Same(ps[1], ps["layers.0.norm"]);
        Assert.Contains("layers.0.wq", Assert.Throws<KeyNotFoundException>(() => ps["nope"]).Message);
        Assert.True(ParameterCollection.GlobMatch("layers.?.w*", "layers.3.wq"));
        Assert.False(ParameterCollection.GlobMatch("layers.?.w*", "layers.12.wq"));
    }
}
