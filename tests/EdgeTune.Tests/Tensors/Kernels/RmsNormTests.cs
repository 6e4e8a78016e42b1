using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class RmsNormTests
{
    private const float Eps = 1e-5f;

    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void RowKernelsMatchReferenceForEveryLength(int bits)
        => ForWidth(bits, Rows<V128>, Rows<V256>, Rows<V512>);

    private static void Rows<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(41);
        for (int n = 0; n <= 257; n++)
        {
            float[] x = Rand(rng, n), w = Rand(rng, n, 0.5f, 1.5f), dy = Rand(rng, n), dx = Rand(rng, n), dw = Rand(rng, n);
            double[] ex = ToDouble(x), ew = ToDouble(w), ey = new double[n], edx = ToDouble(dx), edw = ToDouble(dw), rs = new double[1];
            var y = new float[n];
            float r = RmsNorm.ForwardRow<TV>(x, w, y, Eps);
            RmsNormReference.Forward<double>(ex, ew, ey, rs, 1, n, Eps);
            Close(ey, y, 2e-6, 1e-6, $"forward n={n}");
            Close([rs[0]], [r], 1e-6, 0, $"rstd n={n}");
            RmsNorm.BackwardRow<TV>(x, w, r, dy, dx, dw);
            RmsNormReference.Backward<double>(ex, ew, rs, ToDouble(dy), edx, edw, 1, n);
            Close(edx, dx, 1e-5, 1e-5, $"dx n={n}");
            Close(edw, dw, 1e-5, 1e-5, $"dw n={n}");
        }
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 7)]
    [InlineData(4, 64)]
    [InlineData(2, 1)]
    [InlineData(0, 9)]
    public void PublicEntryPointsMatchReference(int rows, int cols)
    {
        var rng = new Rng(42);
        float[] x = Rand(rng, rows * cols), w = Rand(rng, cols), dy = Rand(rng, rows * cols);
        float[] y = new float[rows * cols], rstd = new float[rows], dx = new float[rows * cols], dw = Rand(rng, cols);
        double[] ey = new double[rows * cols], ers = new double[rows], edx = new double[rows * cols], edw = ToDouble(dw);
        RmsNorm.Forward(x, w, y, rstd, rows, cols, Eps);
        RmsNormReference.Forward<double>(ToDouble(x), ToDouble(w), ey, ers, rows, cols, Eps);
        Close(ey, y, 2e-6, 1e-6, "y");
        Close(ers, rstd, 1e-6, 0, "rstd");
        RmsNorm.Backward(x, w, rstd, dy, dx, dw, rows, cols);
        RmsNormReference.Backward<double>(ToDouble(x), ToDouble(w), ToDouble(rstd), ToDouble(dy), edx, edw, rows, cols);
        Close(edx, dx, 1e-5, 1e-5, "dx");
        Close(edw, dw, 1e-5, 1e-5, "dw");
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(43);
        const int rows = 3, cols = 5;
        double[] x = RandD(rng, rows * cols), w = RandD(rng, cols, 0.5, 1.5), up = RandD(rng, rows * cols);
        double eps = 1e-3;
        double Loss(double[] v)
        {
            var y = new double[rows * cols];
            RmsNormReference.Forward<double>(v.AsSpan(0, rows * cols), v.AsSpan(rows * cols), y, new double[rows], rows, cols, eps);
            return GradCheck.Weighted(y, up);
        }
        var y = new double[rows * cols];
        var rs = new double[rows];
        RmsNormReference.Forward<double>(x, w, y, rs, rows, cols, eps);
        var g = new double[rows * cols + cols];
        RmsNormReference.Backward<double>(x, w, rs, up, g.AsSpan(0, rows * cols), g.AsSpan(rows * cols), rows, cols);
        GradCheck.Check("RmsNorm (x, w)", Loss, [.. x, .. w], g);
    }

    [Fact]
    public void BadShapesNameOpAndTensor()
    {
        var e = Assert.Throws<ShapeException>(() => RmsNorm.Forward(new float[6], new float[2], new float[6], new float[2], 2, 3, Eps));
        Assert.Contains("RmsNorm.Forward", e.Message);
        Assert.Contains("'w'", e.Message);
        e = Assert.Throws<ShapeException>(() => RmsNorm.Forward(new float[6], new float[3], new float[6], new float[1], 2, 3, Eps));
        Assert.Contains("'rstd'", e.Message);
        e = Assert.Throws<ShapeException>(() => RmsNorm.Backward(new float[6], new float[3], new float[2], new float[6], new float[6], new float[4], 2, 3));
        Assert.Contains("RmsNorm.Backward", e.Message);
        Assert.Contains("'dw'", e.Message);
    }
}
