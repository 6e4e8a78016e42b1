using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class SoftmaxTests
{
    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void RowKernelsMatchReferenceForEveryLength(int bits)
        => ForWidth(bits, Rows<V128>, Rows<V256>, Rows<V512>);

    private static void Rows<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(31);
        for (int n = 1; n <= 257; n++)
        {
            float[] x = Rand(rng, n, -10, 10), dy = Rand(rng, n), start = Rand(rng, n);
            double[] dx = ToDouble(x), e = new double[n];
            var y = new float[n];

            Softmax.ForwardRow<TV>(x, y, log: false);
            SoftmaxReference.Forward<double>(dx, e, 1, n);
            Close(e, y, 1e-5, 1e-7, $"softmax n={n}");
            float[] g = (float[])start.Clone();
            double[] eg = ToDouble(start);
            Softmax.BackwardRow<TV>(y, dy, g, log: false);
            SoftmaxReference.Backward<double>(ToDouble(y), ToDouble(dy), eg, 1, n);
            Close(eg, g, 1e-5, 1e-6, $"softmax backward n={n}");

            Softmax.ForwardRow<TV>(x, y, log: true);
            SoftmaxReference.LogForward<double>(dx, e, 1, n);
            Close(e, y, 1e-6, 2e-6, $"log-softmax n={n}");
            g = (float[])start.Clone();
            eg = ToDouble(start);
            Softmax.BackwardRow<TV>(y, dy, g, log: true);
            SoftmaxReference.LogBackward<double>(ToDouble(y), ToDouble(dy), eg, 1, n);
            Close(eg, g, 1e-5, 2e-6, $"log-softmax backward n={n}");
        }
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 7)]
    [InlineData(5, 1)]
    [InlineData(2, 300)]
    [InlineData(0, 3)]
    public void PublicEntryPointsMatchReference(int rows, int cols)
    {
        var rng = new Rng(32);
        float[] x = Rand(rng, rows * cols, -20, 20), dy = Rand(rng, rows * cols), y = new float[rows * cols];
        double[] e = new double[rows * cols];
        Softmax.Forward(x, y, rows, cols);
        SoftmaxReference.Forward<double>(ToDouble(x), e, rows, cols);
        Close(e, y, 1e-5, 1e-7, "Forward");
        float[] dx = new float[rows * cols];
        double[] edx = new double[rows * cols];
        Softmax.Backward(y, dy, dx, rows, cols);
        SoftmaxReference.Backward<double>(ToDouble(y), ToDouble(dy), edx, rows, cols);
        Close(edx, dx, 1e-5, 1e-6, "Backward");

        Softmax.LogForward(x, y, rows, cols);
        SoftmaxReference.LogForward<double>(ToDouble(x), e, rows, cols);
        Close(e, y, 1e-6, 4e-6, "LogForward");
        Array.Clear(dx);
        Array.Clear(edx);
        Softmax.LogBackward(y, dy, dx, rows, cols);
        SoftmaxReference.LogBackward<double>(ToDouble(y), ToDouble(dy), edx, rows, cols);
        Close(edx, dx, 1e-5, 4e-6, "LogBackward");
    }

    [Fact]
    public void HugeLogitsStayFinite()
    {
        float[] x = [1e30f, -1e30f, 0f, 1e30f, -3e38f, 3e38f, 3e38f, -1e30f];
        var y = new float[8];
        Softmax.Forward(x, y, 2, 4);
        Assert.Equal([0.5f, 0f, 0f, 0.5f, 0f, 0.5f, 0.5f, 0f], y);
        Softmax.LogForward(x, y, 2, 4);
        Assert.All(y, v => Assert.False(float.IsNaN(v) || float.IsPositiveInfinity(v)));
        Assert.Equal(-MathF.Log(2), y[0], 1e-6f);
        Assert.Equal(-MathF.Log(2), y[5], 1e-6f);
        Assert.True(y[1] < -1e29f);

        // in place
        float[] z = [1000f, 1001f, 1002f];
        Softmax.Forward(z, z, 1, 3);
        Assert.Equal(1.0, z.Sum(), 6);
        Assert.True(z[2] > z[1] && z[1] > z[0]);
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(33);
        const int rows = 2, cols = 5;
        double[] x = RandD(rng, rows * cols, -3, 3), w = RandD(rng, rows * cols);
        double Loss(double[] v) { var y = new double[v.Length]; SoftmaxReference.Forward<double>(v, y, rows, cols); return GradCheck.Weighted(y, w); }
        double LogLoss(double[] v) { var y = new double[v.Length]; SoftmaxReference.LogForward<double>(v, y, rows, cols); return GradCheck.Weighted(y, w); }

        var y = new double[x.Length];
        var g = new double[x.Length];
        SoftmaxReference.Forward<double>(x, y, rows, cols);
        SoftmaxReference.Backward<double>(y, w, g, rows, cols);
        GradCheck.Check("softmax", Loss, x, g);

        Array.Clear(g);
        SoftmaxReference.LogForward<double>(x, y, rows, cols);
        SoftmaxReference.LogBackward<double>(y, w, g, rows, cols);
        GradCheck.Check("log-softmax", LogLoss, x, g);
    }

    [Fact]
    public void BadShapesNameOpAndTensor()
    {
        var e = Assert.Throws<ShapeException>(() => Softmax.Forward(new float[6], new float[5], 2, 3));
        Assert.Contains("Softmax.Forward", e.Message);
        Assert.Contains("'y'", e.Message);
        e = Assert.Throws<ShapeException>(() => Softmax.LogBackward(new float[6], new float[6], new float[7], 2, 3));
        Assert.Contains("'dx'", e.Message);
        e = Assert.Throws<ShapeException>(() => Softmax.Backward(new float[6], new float[6], new float[6], -2, -3));
        Assert.Contains("must not be negative", e.Message);
    }
}
