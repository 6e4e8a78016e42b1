using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Training;

/// <summary>Saving and restoring optimizer state: exact round trip, resumed training identical to uninterrupted.</summary>
public class OptimizerStateTests
{
    private static ParameterCollection Model(ulong seed)
    {
        var rng = new Rng(seed);
        Parameter P(string name, int[] shape)
        {
            var t = Tensor.Zeros(DType.F32, shape, name);
            rng.FillGaussian(t.Span<float>(), 0, 0.5f);
            return new Parameter(name, t);
        }
        return new ParameterCollection([P("l1.w", [6, 5]), P("l1.b", [6]), P("l2.w", [3, 6])]);
    }

    private static void TrainSteps(ParameterCollection ps, IOptimizer opt, int from, int count)
    {
        for (int step = from; step < from + count; step++)
        {
            var rng = new Rng(1000 + (ulong)step); // the data of step k is fixed by k
            using var x = Tensor.Zeros(DType.F32, [4, 5], "x");
            using var y = Tensor.Zeros(DType.F32, [4, 3], "y");
            rng.FillUniform(x.Span<float>(), -1, 1);
            rng.FillUniform(y.Span<float>(), -1, 1);
            opt.ZeroGrad();
            using var tape = new Tape();
            var h = tape.Linear(Variable.Constant(x), ps["l1.w"], ps["l1.b"]);
            var o = tape.Linear(tape.Mul(h, h), ps["l2.w"]);
            tape.Backward(tape.MseLoss(o, Variable.Constant(y)));
            GradClip.ClipGlobalNorm(ps, 0.5);
            opt.Step();
        }
    }

    private static byte[][] Weights(ParameterCollection ps) => ps.Select(p => p.Value.Bytes.ToArray()).ToArray();

    private static void Restore(ParameterCollection ps, byte[][] w)
    {
        for (int i = 0; i < ps.Count; i++) w[i].CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ps[i].Value.Span<float>()));
    }

    public static TheoryData<string> Kinds => new() { "adamw", "sgd" };

    private static Optimizer Make(string kind, ParameterCollection ps) => kind == "adamw"
        ? new AdamW(ps, new AdamWOptions { LearningRate = 0.05, WeightDecay = 0.1 })
        : new Sgd(ps, new SgdOptions { LearningRate = 0.05, Momentum = 0.9, Nesterov = true, WeightDecay = 0.01 });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ResumedTrainingIsBitIdenticalToUninterrupted(string kind)
    {
        using var a = Model(7);
        using var optA = Make(kind, a);
        TrainSteps(a, optA, 0, 3);
        byte[][] weightsAt3 = Weights(a);
        var saved = new MemoryStream();
        optA.SaveState(saved);
        TrainSteps(a, optA, 3, 4);

        using var b = Model(99); // different initial weights, then overwritten by the checkpoint
        Restore(b, weightsAt3);
        using var optB = Make(kind, b);
        saved.Position = 0;
        optB.LoadState(saved);
        Assert.Equal(3, optB.StepCount);
        TrainSteps(b, optB, 3, 4);

        Assert.Equal(Weights(a), Weights(b));
        Assert.NotEqual(weightsAt3[0], Weights(a)[0]); // training really moved the weights
    }

    [Fact]
    public void RoundTripIsByteExactAndRestoresState()
    {
        using var ps = Model(3);
        using var opt = Make("adamw", ps);
        TrainSteps(ps, opt, 0, 2);
        var first = new MemoryStream();
        opt.SaveState(first);

        using var ps2 = Model(3);
        using var opt2 = Make("adamw", ps2);
        first.Position = 0;
        opt2.LoadState(first);
        Assert.Equal(first.Length, first.Position); // read exactly what was written
        var second = new MemoryStream();
        opt2.SaveState(second);
        Assert.Equal(first.ToArray(), second.ToArray());
        for (int i = 0; i < opt.Parameters.Count; i++)
            for (int s = 0; s < 2; s++)
                Assert.Equal(opt.State(i)[s].Bytes.ToArray(), opt2.State(i)[s].Bytes.ToArray());
        Assert.Equal(0x45, first.ToArray()[0]); // "ETOS", little-endian
    }

    private static byte[] Saved(IOptimizer opt)
    {
        var ms = new MemoryStream();
        opt.SaveState(ms);
        return ms.ToArray();
    }

    [Fact]
    public void MismatchesRaiseClearErrors()
    {
        using var ps = Model(1);
        using var adam = Make("adamw", ps);
        using var sgd = Make("sgd", ps);
        byte[] state = Saved(adam);

        var e = Assert.Throws<InvalidDataException>(() => sgd.LoadState(new MemoryStream(state)));
        Assert.Contains("AdamW", e.Message);

        byte[] bad = (byte[])state.Clone();
        bad[0] ^= 0xFF;
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => adam.LoadState(new MemoryStream(bad))).Message);

        bad = (byte[])state.Clone();
        bad[4] = 9;
        Assert.Contains("version 9", Assert.Throws<InvalidDataException>(() => adam.LoadState(new MemoryStream(bad))).Message);

        Assert.Contains("ends", Assert.Throws<InvalidDataException>(() => adam.LoadState(new MemoryStream(state[..20]))).Message);
        Assert.Contains("ends", Assert.Throws<InvalidDataException>(() => adam.LoadState(new MemoryStream(state[..^10]))).Message);

        // same names, another shape
        using var other = new ParameterCollection([
            new Parameter("l1.w", Tensor.Zeros(DType.F32, [5, 6], "l1.w")),
            new Parameter("l1.b", Tensor.Zeros(DType.F32, [6], "l1.b")),
            new Parameter("l2.w", Tensor.Zeros(DType.F32, [3, 6], "l2.w")),
        ]);
        using var adamOther = Make("adamw", other);
        var e2 = Assert.Throws<InvalidDataException>(() => adamOther.LoadState(new MemoryStream(state)));
        Assert.Contains("'l1.w'", e2.Message);
        Assert.Contains("[6, 5]", e2.Message);
        Assert.Contains("[5, 6]", e2.Message);

        // a parameter frozen since: the counts differ
        ps["l1.b"].Trainable = false;
        using var adamFewer = Make("adamw", ps);
        Assert.Contains("3 parameters", Assert.Throws<InvalidDataException>(() => adamFewer.LoadState(new MemoryStream(state))).Message);
    }
}
