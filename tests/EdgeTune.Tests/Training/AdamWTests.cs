using EdgeTune.Tensors;
using EdgeTune.Training;
using static EdgeTune.Tests.Training.OptimizerTestUtil;

namespace EdgeTune.Tests.Training;

public class AdamWTests
{
    // lr 0.1, β1 0.9, β2 0.999, ε 1e-8, λ 0.1; w0 = [1, −2, 0.5]; g1 = [0.5, −1, 2]; g2 = [−0.5, 1, 2].
    //
    // Step 1: decay 1 − 0.1·0.1 = 0.99 → w = [0.99, −1.98, 0.495]
    //   m = 0.1·g1 = [0.05, −0.1, 0.2];  v = 0.001·g1² = [0.00025, 0.001, 0.004]
    //   bias corrections 1 − 0.9 = 0.1 and 1 − 0.999 = 0.001: m̂ = [0.5, −1, 2], v̂ = [0.25, 1, 4], √v̂ = [0.5, 1, 2]
    //   w −= 0.1·m̂/(√v̂ + 1e-8) = 0.1·[1/(1+2e-8), −1/(1+1e-8), 1/(1+5e-9)]
    //   w1 = [0.89 + 2e-9, −1.88 − 1e-9, 0.395 + 5e-10]  (to 1e-16)
    private static readonly double[] W1 = [0.890000002, -1.880000001, 0.3950000005];
    //
    // Step 2: w = 0.99·w1 = [0.88110000198, −1.86120000099, 0.391050000495]
    //   m = 0.9·m + 0.1·g2 = [−0.005, 0.01, 0.38];  v = 0.999·v + 0.001·g2² = [0.00049975, 0.001999, 0.007996]
    //   bias corrections 1 − 0.81 = 0.19 and 1 − 0.998001 = 0.001999:
    //   m̂ = [−1/38, 1/19, 2];  v̂ = [0.25, 1, 4] (|g2| = |g1|), √v̂ = [0.5, 1, 2]
    //   w −= 0.1·[(−1/19)/(1+2e-8), (1/19)/(1+1e-8), 1/(1+5e-9)]
    //   w2 = [0.88110000198 + 0.1/19·(1 − 2e-8), −1.86120000099 − 0.1/19·(1 − 1e-8), 0.391050000495 − 0.1·(1 − 5e-9)]
    private static readonly double[] W2 =
    [
        0.88110000198 + 0.1 / 19 * (1 - 2e-8),
        -1.86120000099 - 0.1 / 19 * (1 - 1e-8),
        0.391050000495 - 0.1 * (1 - 5e-9),
    ];

    private static readonly AdamWOptions Options = new() { LearningRate = 0.1, Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8, WeightDecay = 0.1 };

    [Theory]
    [InlineData(DType.F64, 1e-12)]
    [InlineData(DType.F32, 2e-7)]
    public void TwoStepsMatchHandComputation(DType dtype, double tol)
    {
        using var p = Param("w", dtype, [1, -2, 0.5]);
        using var opt = new AdamW([p], Options);
        SetGrad(p, [0.5, -1, 2]);
        opt.Step();
        Near(W1, Values(p), tol);
        SetGrad(p, [-0.5, 1, 2]);
        opt.Step();
        Near(W2, Values(p), tol);
        Assert.Equal(2, opt.StepCount);
        Near([-0.005, 0.01, 0.38], opt.State(0)[0].ToFloatArray().Select(f => (double)f).ToArray(), 1e-7);
        Near([0.00049975, 0.001999, 0.007996], opt.State(0)[1].ToFloatArray().Select(f => (double)f).ToArray(), 1e-7);
    }

    [Fact]
    public void ExcludedParameterIsNotDecayedAndFrozenOneIsSkipped()
    {
        using var a = Param("a", DType.F64, [1, 1, 1]);
        using var n = Param("norm", DType.F64, [1, 1, 1]);
        using var f = Param("frozen", DType.F64, [3, 3, 3]);
        f.Trainable = false;
        using var opt = new AdamW([a, n, f], Options with { Decays = p => !p.Name.StartsWith("norm", StringComparison.Ordinal) });
        Assert.Equal(["a", "norm"], opt.Parameters.Select(p => p.Name));
        // zero gradient: Adam's update is 0/(0+ε) = 0, so only the decay moves the weights
        opt.Step();
        Assert.Equal([0.99, 0.99, 0.99], Values(a));
        Assert.Equal([1.0, 1, 1], Values(n));
        Assert.Equal([3.0, 3, 3], Values(f));
    }

    [Fact]
    public void ThreadCountDoesNotChangeTheResult()
    {
        const int n = 5 * Optimizer.ChunkElements + 123; // several work items, a ragged last one
        float[] Run(int threads)
        {
            var rng = new Rng(11);
            using var w = new EdgeTune.Autograd.Parameter("w", Tensor.Zeros(DType.F32, [n], "w"));
            rng.FillUniform(w.Value.Span<float>(), -1, 1);
            using var pool = new WorkerPool(threads);
            using var opt = new AdamW([w], Options) { Pool = pool };
            for (int step = 0; step < 2; step++)
            {
                rng.FillUniform(w.Grad!.Span<float>(), -1, 1);
                opt.Step();
            }
            return w.Value.ToFloatArray();
        }
        float[] one = Run(1), three = Run(3);
        Assert.Equal(one, three);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        using var p = Param("w", DType.F32, [1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], Options with { Beta1 = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], Options with { Epsilon = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([p], Options with { LearningRate = double.NaN }));
    }
}
