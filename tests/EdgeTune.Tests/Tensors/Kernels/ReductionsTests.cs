using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class ReductionsTests
{
    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void VectorPathsMatchReferenceForEveryLength(int bits)
        => ForWidth(bits, AllLengths<V128>, AllLengths<V256>, AllLengths<V512>);

    private static void AllLengths<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(21);
        for (int n = 0; n <= 257; n++)
        {
            float[] a = Rand(rng, n), b = Rand(rng, n);
            double[] da = ToDouble(a), db = ToDouble(b);
            double scale = 1e-6 * (n + 1);
            Assert.True(Math.Abs(Reductions.SumCore<TV>(a) - ReductionsReference.Sum<double>(da)) <= 3 * scale, $"Sum n={n}");
            Assert.True(Math.Abs(Reductions.DotCore<TV>(a, b) - ReductionsReference.Dot<double>(da, db)) <= 9 * scale, $"Dot n={n}");
            double ss = ReductionsReference.SumOfSquares<double>(da);
            Assert.True(Math.Abs(Reductions.DotCore<TV>(a, a) - ss) <= 1e-6 * ss, $"SumOfSquares n={n}");
            Assert.Equal(ReductionsReference.Max<float>(a), Reductions.MaxCore<TV>(a));
            Assert.False(Reductions.HasNonFiniteCore<TV>(a), $"HasNonFinite false positive n={n}");
        }
    }

    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void HasNonFiniteFindsEveryPosition(int bits)
        => ForWidth(bits, NonFinite<V128>, NonFinite<V256>, NonFinite<V512>);

    private static void NonFinite<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(22);
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            for (int n = 1; n <= 70; n++)
                for (int at = 0; at < n; at++)
                {
                    float[] a = Rand(rng, n, -1e30f, 1e30f);
                    a[at] = bad;
                    Assert.True(Reductions.HasNonFiniteCore<TV>(a), $"{bad} at {at} of {n}");
                }
        var big = new float[5000];
        big[4321] = float.NaN;
        Assert.True(Reductions.HasNonFiniteCore<TV>(big));
        big[4321] = float.MaxValue;
        Assert.False(Reductions.HasNonFiniteCore<TV>(big));
    }

    [Fact]
    public void LongSumOfSquaresKeepsDoubleAccuracy()
    {
        var rng = new Rng(23);
        float[] a = Rand(rng, 1 << 20, -1, 1);
        double exact = ReductionsReference.SumOfSquares<float>(a);
        Assert.True(Math.Abs(Reductions.SumOfSquares(a) - exact) <= 1e-6 * exact, $"{Reductions.SumOfSquares(a)} vs {exact}");
        double sum = ReductionsReference.Sum<float>(a);
        Assert.True(Math.Abs(Reductions.Sum(a) - sum) <= 1e-3, $"{Reductions.Sum(a)} vs {sum}");

        // 2^25 ones: float accumulation alone would stall at 2^24
        var ones = new float[1 << 25];
        ones.AsSpan().Fill(1f);
        Assert.Equal((double)(1 << 25), Reductions.Sum(ones));
    }

    [Fact]
    public void PublicEntryPointsAndEmptyInputs()
    {
        Assert.Equal(0.0, Reductions.Sum([]));
        Assert.Equal(float.NegativeInfinity, Reductions.Max([]));
        Assert.Equal(0.0, Reductions.SumOfSquares([]));
        Assert.False(Reductions.HasNonFinite([]));
        Assert.Equal(7f, Reductions.Max([1f, -3f, 7f, 2f]));
        Assert.Equal(32.0, Reductions.Dot([1f, 2f, 3f], [4f, 5f, 6f]));
        Assert.True(Reductions.HasNonFinite([1f, float.NaN]));
        var e = Assert.Throws<ShapeException>(() => Reductions.Dot(new float[3], new float[4]));
        Assert.Contains("Reductions.Dot", e.Message);
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(4, 7)]
    [InlineData(3, 65)]
    [InlineData(0, 5)]
    [InlineData(2, 0)]
    public void RowSumsMatchReference(int rows, int cols)
    {
        var rng = new Rng(24);
        float[] x = Rand(rng, rows * cols), sums = new float[rows];
        var e = new double[rows];
        Reductions.RowSums(x, sums, rows, cols);
        ReductionsReference.RowSums<double>(ToDouble(x), e, rows, cols);
        Close(e, sums, 1e-6, 1e-6, "RowSums");
        var ex = Assert.Throws<ShapeException>(() => Reductions.RowSums(x, new float[rows + 1], rows, cols));
        Assert.Contains("'sums'", ex.Message);
    }
}
