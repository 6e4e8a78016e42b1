using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Training;

/// <summary>Tape + optimizer + clipping together: a tiny regression must actually be learned.</summary>
public class EndToEndTests
{
    [Theory]
    [InlineData("adamw")]
    [InlineData("sgd")]
    public void LinearRegressionConverges(string kind)
    {
        var rng = new Rng(42);
        const int n = 32, inDim = 5, outDim = 3;
        using var x = Tensor.Zeros(DType.F32, [n, inDim], "x");
        using var y = Tensor.Zeros(DType.F32, [n, outDim], "y");
        var wTrue = new float[outDim * inDim];
        rng.FillUniform(x.Span<float>(), -1, 1);
        rng.FillUniform(wTrue, -1, 1);
        Gemm.ABt<float>(x.ReadOnlySpan<float>(), wTrue, y.Span<float>(), n, inDim, outDim);
        for (int i = 0; i < n; i++) y.Span<float>()[i * outDim] += 0.5f; // a bias on the first output

        using var ps = new ParameterCollection([
            new Parameter("w", Tensor.Zeros(DType.F32, [outDim, inDim], "w")),
            new Parameter("b", Tensor.Zeros(DType.F32, [outDim], "b")),
        ]);
        using Optimizer opt = kind == "adamw"
            ? new AdamW(ps, new AdamWOptions { LearningRate = 0.05, WeightDecay = 0 })
            : new Sgd(ps, new SgdOptions { LearningRate = 0.1, Momentum = 0.9 });

        double first = 0, last = 0;
        for (int step = 0; step < 300; step++)
        {
            opt.ZeroGrad();
            using var tape = new Tape();
            var pred = tape.Linear(Variable.Constant(x), ps["w"], ps["b"]);
            last = tape.Backward(tape.MseLoss(pred, Variable.Constant(y)));
            if (step == 0) first = last;
            GradClip.ClipGlobalNorm(ps, 10.0);
            opt.Step();
        }
        Assert.True(last < first * 1e-4, $"{kind}: loss went from {first} to {last}");
        Assert.Equal(0.5f, ps["b"].Value.ToFloatArray()[0], 2);
    }
}
