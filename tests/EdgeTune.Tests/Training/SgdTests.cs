using EdgeTune.Tensors;
using EdgeTune.Training;
using static EdgeTune.Tests.Training.OptimizerTestUtil;

namespace EdgeTune.Tests.Training;

public class SgdTests
{
    // lr 0.1, μ 0.9, λ 0.01; w0 = [1, −2, 0.5]; g1 = [0.5, −1, 2]; g2 = [−0.5, 1, 2].
    // Step 1: d = g1 + 0.01·w0 = [0.51, −1.02, 2.005]; buf = d; w1 = w0 − 0.1·d = [0.949, −1.898, 0.2995]
    // Step 2: d = g2 + 0.01·w1 = [−0.49051, 0.98102, 2.002995]
    //         buf = 0.9·[0.51, −1.02, 2.005] + d = [−0.03151, 0.06302, 3.807495]
    //         w2 = w1 − 0.1·buf = [0.952151, −1.904302, −0.0812495]
    [Theory]
    [InlineData(DType.F64, 1e-14)]
    [InlineData(DType.F32, 2e-7)]
    public void MomentumMatchesHandComputation(DType dtype, double tol)
    {
        using var p = Param("w", dtype, [1, -2, 0.5]);
        using var opt = new Sgd([p], new SgdOptions { LearningRate = 0.1, Momentum = 0.9, WeightDecay = 0.01 });
        SetGrad(p, [0.5, -1, 2]);
        opt.Step();
        Near([0.949, -1.898, 0.2995], Values(p), tol);
        SetGrad(p, [-0.5, 1, 2]);
        opt.Step();
        Near([0.952151, -1.904302, -0.0812495], Values(p), tol);
        Near([-0.03151, 0.06302, 3.807495], opt.State(0)[0].ToFloatArray().Select(f => (double)f).ToArray(), 1e-6);
    }

    // Nesterov, step 1: d = [0.51, −1.02, 2.005]; buf = d; d + 0.9·buf = 1.9·d; w1 = w0 − 0.19·d = [0.9031, −1.8062, 0.11905]
    // Step 2 from there: d = g2 + 0.01·w1 = [−0.490969, 0.981938, 2.0011905]
    //   buf = 0.9·[0.51, −1.02, 2.005] + d = [−0.031969, 0.063938, 3.8056905]
    //   d + 0.9·buf = [−0.5197411, 1.0394822, 5.42631195]; w2 = w1 − 0.1·that = [0.95507411, −1.91014822, −0.423581195]
    [Fact]
    public void NesterovMatchesHandComputation()
    {
        using var p = Param("w", DType.F64, [1, -2, 0.5]);
        using var opt = new Sgd([p], new SgdOptions { LearningRate = 0.1, Momentum = 0.9, WeightDecay = 0.01, Nesterov = true });
        SetGrad(p, [0.5, -1, 2]);
        opt.Step();
        Near([0.9031, -1.8062, 0.11905], Values(p), 1e-14);
        SetGrad(p, [-0.5, 1, 2]);
        opt.Step();
        Near([0.95507411, -1.91014822, -0.423581195], Values(p), 1e-14);
    }

    [Fact]
    public void PlainSgdKeepsNoState()
    {
        using var p = Param("w", DType.F32, [1, 2]);
        using var opt = new Sgd([p], new SgdOptions { LearningRate = 0.5 });
        Assert.Equal(0, opt.SlotCount);
        SetGrad(p, [2, -2]);
        opt.Step();
        Assert.Equal([0.0, 3.0], Values(p));
    }

    [Fact]
    public void NesterovNeedsMomentum()
    {
        using var p = Param("w", DType.F32, [1]);
        Assert.Throws<ArgumentException>(() => new Sgd([p], new SgdOptions { Nesterov = true }));
    }
}
