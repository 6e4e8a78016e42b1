using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class LayerNormTests
{
    private const float Eps = 1e-5f;

    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void RowKernelsMatchReferenceForEveryLength(int bits)
        => ForWidth(bits, Rows<V128>, Rows<V256>, Rows<V512>);

    private static void Rows<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(51);
        for (int n = 1; n <= 257; n++)
        {
            bool bias = n % 2 == 0;
            float[] x = Rand(rng, n, -2, 4), w = Rand(rng, n, 0.5f, 1.5f), b = bias ? Rand(rng, n) : [];
            float[] dy = Rand(rng, n), dx = Rand(rng, n), dw = Rand(rng, n), db = bias ? Rand(rng, n) : [];
            double[] ey = new double[n], edx = ToDouble(dx), edw = ToDouble(dw), edb = ToDouble(db), m = new double[1], rs = new double[1];
            var y = new float[n];
            var (mean, rstd) = LayerNorm.ForwardRow<TV>(x, w, b, y, Eps);
            LayerNormReference.Forward<double>(ToDouble(x), ToDouble(w), ToDouble(b), ey, m, rs, 1, n, Eps);
            Close(ey, y, 1e-5, 2e-6, $"forward n={n}");
            Close([m[0], rs[0]], [mean, rstd], 1e-5, 1e-6, $"mean/rstd n={n}");
            LayerNorm.BackwardRow<TV>(x, w, mean, rstd, dy, dx, dw, db);
            LayerNormReference.Backward<double>(ToDouble(x), ToDouble(w), m, rs, ToDouble(dy), edx, edw, edb, 1, n);
            Close(edx, dx, 1e-5, 1e-5, $"dx n={n}");
            Close(edw, dw, 1e-5, 1e-5, $"dw n={n}");
            Close(edb, db, 1e-6, 1e-6, $"db n={n}");
        }
    }

    [Theory]
    [InlineData(1, 7, true)]
    [InlineData(3, 7, false)]
    [InlineData(4, 64, true)]
    [InlineData(2, 1, true)]
    [InlineData(0, 9, true)]
    public void PublicEntryPointsMatchReference(int rows, int cols, bool bias)
    {
        var rng = new Rng(52);
        float[] x = Rand(rng, rows * cols), w = Rand(rng, cols), b = bias ? Rand(rng, cols) : [], dy = Rand(rng, rows * cols);
        float[] y = new float[rows * cols], mean = new float[rows], rstd = new float[rows], dx = new float[rows * cols];
        float[] dw = Rand(rng, cols), db = bias ? Rand(rng, cols) : [];
        double[] ey = new double[rows * cols], em = new double[rows], ers = new double[rows], edx = new double[rows * cols];
        double[] edw = ToDouble(dw), edb = ToDouble(db);
        LayerNorm.Forward(x, w, b, y, mean, rstd, rows, cols, Eps);
        LayerNormReference.Forward<double>(ToDouble(x), ToDouble(w), ToDouble(b), ey, em, ers, rows, cols, Eps);
        Close(ey, y, 1e-5, 2e-6, "y");
        Close(em, mean, 1e-5, 1e-6, "mean");
        Close(ers, rstd, 1e-5, 0, "rstd");
        LayerNorm.Backward(x, w, mean, rstd, dy, dx, dw, db, rows, cols);
        LayerNormReference.Backward<double>(ToDouble(x), ToDouble(w), ToDouble(mean), ToDouble(rstd), ToDouble(dy), edx, edw, edb, rows, cols);
        Close(edx, dx, 1e-5, 1e-5, "dx");
        Close(edw, dw, 1e-5, 1e-5, "dw");
        Close(edb, db, 1e-6, 1e-6, "db");
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(53);
        const int rows = 3, cols = 5, n = rows * cols;
        double[] x = RandD(rng, n), w = RandD(rng, cols, 0.5, 1.5), b = RandD(rng, cols), up = RandD(rng, n);
        double eps = 1e-3;
        double Loss(double[] v)
        {
            var y = new double[n];
            LayerNormReference.Forward<double>(v.AsSpan(0, n), v.AsSpan(n, cols), v.AsSpan(n + cols), y, new double[rows], new double[rows], rows, cols, eps);
            return GradCheck.Weighted(y, up);
        }
        var y = new double[n];
        double[] m = new double[rows], rs = new double[rows];
        LayerNormReference.Forward<double>(x, w, b, y, m, rs, rows, cols, eps);
        var g = new double[n + 2 * cols];
        LayerNormReference.Backward<double>(x, w, m, rs, up, g.AsSpan(0, n), g.AsSpan(n, cols), g.AsSpan(n + cols), rows, cols);
        GradCheck.Check("LayerNorm (x, w, b)", Loss, [.. x, .. w, .. b], g);
    }

    [Fact]
    public void BadShapesNameOpAndTensor()
    {
        var e = Assert.Throws<ShapeException>(() =>
            LayerNorm.Forward(new float[6], new float[3], new float[2], new float[6], new float[2], new float[2], 2, 3, Eps));
        Assert.Contains("LayerNorm.Forward", e.Message);
        Assert.Contains("'b'", e.Message);
        e = Assert.Throws<ShapeException>(() =>
            LayerNorm.Backward(new float[6], new float[3], new float[2], new float[2], new float[5], new float[6], new float[3], [], 2, 3));
        Assert.Contains("'dy'", e.Message);
    }
}
