using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using EdgeTune.Training;
using EdgeTune.Training.Internal;

namespace EdgeTune.Tests.Training;

/// <summary>Vectorized float updates against the scalar reference, bit for bit, at every width and length 0..257.</summary>
public class OptimizerKernelTests
{
    private static readonly AdamWScalars<float> Adam = new(0.999f, 0.9f, 0.1f, 0.999f, 0.001f, 0.0271f, 1.93f, 1e-8f);

    private static float[] Random(Rng rng, int n, float lo = -2, float hi = 2)
    {
        var a = new float[n];
        rng.FillUniform(a, lo, hi);
        return a;
    }

    private delegate void AdamKernel(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars<float> s);
    private delegate void SgdKernel(Span<float> w, ReadOnlySpan<float> g, Span<float> b, in SgdScalars<float> s);

    public static TheoryData<int> Widths => new() { 512, 256, 128 };

    private static (AdamKernel, SgdKernel) Kernels(int width) => width switch
    {
        512 => (OptimizerKernels.AdamW<V512>, OptimizerKernels.Sgd<V512>),
        256 => (OptimizerKernels.AdamW<V256>, OptimizerKernels.Sgd<V256>),
        _ => (OptimizerKernels.AdamW<V128>, OptimizerKernels.Sgd<V128>),
    };

    [Theory]
    [MemberData(nameof(Widths))]
    public void AdamWMatchesReferenceBitForBit(int width)
    {
        var (adam, _) = Kernels(width);
        var rng = new Rng((ulong)width);
        for (int n = 0; n <= 257; n++)
        {
            float[] w = Random(rng, n), g = Random(rng, n), m = Random(rng, n, -0.1f, 0.1f), v = Random(rng, n, 0, 0.5f);
            float[] w2 = (float[])w.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone();
            adam(w, g, m, v, Adam);
            OptimizerReference.AdamW<float>(w2, g, m2, v2, Adam);
            Assert.Equal(w2, w);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void SgdMatchesReferenceBitForBit(int width)
    {
        var (_, sgd) = Kernels(width);
        var rng = new Rng((ulong)width + 1);
        foreach (var s in new SgdScalars<float>[]
                 {
                     new(0.1f, 0.01f, 0.9f, 0.9f, 0.8f, false),
                     new(0.1f, 0.01f, 0.9f, 0.9f, 1f, true),
                     new(0.05f, 0f, 0f, 0f, 1f, false),
                 })
            for (int n = 0; n <= 257; n++)
            {
                float[] w = Random(rng, n), g = Random(rng, n), b = Random(rng, n);
                float[] w2 = (float[])w.Clone(), b2 = (float[])b.Clone();
                bool momentum = s.Momentum != 0;
                sgd(w, g, momentum ? b : default, s);
                OptimizerReference.Sgd<float>(w2, g, momentum ? b2 : default, s);
                Assert.Equal(w2, w);
                Assert.Equal(b2, b);
            }
    }

    [Fact]
    public void SumOfSquaresInDoubleMatchesReference()
    {
        var rng = new Rng(3);
        for (int n = 0; n <= 257; n++)
        {
            float[] x = Random(rng, n);
            double r = OptimizerReference.SumOfSquares(x), f = OptimizerKernels.SumOfSquares(x);
            Assert.True(Math.Abs(r - f) <= 1e-12 * Math.Max(1, r), $"n={n}: {f} vs {r}");
        }
        // float accumulation would lose the small terms; double keeps them
        var big = new float[1 << 16];
        big[0] = 4096;
        for (int i = 1; i < big.Length; i++) big[i] = 1e-3f;
        double expected = 4096.0 * 4096 + (big.Length - 1) * ((double)1e-3f * 1e-3f);
        // (a float sum would stay at 16777216: each 1e-6 is below half its ulp of 2)
        Assert.Equal(expected, OptimizerKernels.SumOfSquares(big), 1e-3);
    }

    [Fact]
    public void MismatchedLengthsAreRejected()
    {
        var e = Assert.Throws<ShapeException>(() => OptimizerKernels.AdamW<V128>(new float[4], new float[3], new float[4], new float[4], Adam));
        Assert.Contains("AdamW", e.Message);
        Assert.Throws<ShapeException>(() => OptimizerKernels.Sgd<V256>(new float[4], new float[4], new float[5], new SgdScalars<float>(0.1f, 0, 0.9f, 0.9f, 1, false)));
    }
}
