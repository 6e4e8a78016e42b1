using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class ElementwiseTests
{
    private const double Rtol = 2e-6, Atol = 1e-6;

    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void VectorPathsMatchReferenceForEveryLength(int bits)
        => ForWidth(bits, AllOps<V128>, AllOps<V256>, AllOps<V512>);

    private static void AllOps<TV>() where TV : struct, IVec<TV>
    {
        var rng = new Rng(11);
        for (int n = 0; n <= 257; n++)
        {
            float[] a = Rand(rng, n, -9, 9), b = Rand(rng, n), acc = Rand(rng, n);
            double[] da = ToDouble(a), db = ToDouble(b);
            var y = new float[n];
            var e = new double[n];

            Map.Binary<TV, AddOp>(a, b, y, default); ElementwiseReference.Add<double>(da, db, e); Close(e, y, 2e-7, 0, $"Add n={n}");
            Map.Binary<TV, SubOp>(a, b, y, default); ElementwiseReference.Sub<double>(da, db, e); Close(e, y, 2e-7, 0, $"Sub n={n}");
            Map.Binary<TV, MulOp>(a, b, y, default); ElementwiseReference.Mul<double>(da, db, e); Close(e, y, 2e-7, 0, $"Mul n={n}");
            Map.Unary<TV, ScaleOp>(a, y, new ScaleOp(-1.5f)); ElementwiseReference.Scale<double>(da, -1.5, e); Close(e, y, 2e-7, 0, $"Scale n={n}");
            a.CopyTo(y); Map.Binary<TV, AxpyOp>(b, y, y, new AxpyOp(0.25f));
            da.CopyTo(e); ElementwiseReference.AddScaled<double>(e, 0.25, db); Close(e, y, 1e-6, 1e-6, $"AddScaled n={n}");
            Map.Unary<TV, SiLUOp>(a, y, default); ElementwiseReference.SiLU<double>(da, e); Close(e, y, Rtol, Atol, $"SiLU n={n}");
            Map.Unary<TV, GeluTanhOp>(a, y, default); ElementwiseReference.Gelu<double>(da, e, GeluApproximation.Tanh); Close(e, y, Rtol, Atol, $"GeluTanh n={n}");
            Map.Unary<TV, GeluErfOp>(a, y, default); ElementwiseReference.Gelu<double>(da, e, GeluApproximation.Exact); Close(e, y, Rtol, 2e-6, $"GeluErf n={n}");
            Map.Binary<TV, SwiGluOp>(a, b, y, default); ElementwiseReference.SwiGlu<double>(da, db, e); Close(e, y, Rtol, Atol, $"SwiGlu n={n}");

            // backward passes accumulate onto what is there
            Backward<TV, SiLUBackwardOp>(a, b, acc, (x, d, g) => ElementwiseReference.SiLUBackward<double>(x, d, g), $"SiLUBackward n={n}");
            Backward<TV, GeluTanhBackwardOp>(a, b, acc, (x, d, g) => ElementwiseReference.GeluBackward<double>(x, d, g, GeluApproximation.Tanh), $"GeluTanhBackward n={n}");
            Backward<TV, GeluErfBackwardOp>(a, b, acc, (x, d, g) => ElementwiseReference.GeluBackward<double>(x, d, g, GeluApproximation.Exact), $"GeluErfBackward n={n}");

            float[] dg = (float[])acc.Clone(), du = Rand(rng, n);
            double[] edg = ToDouble(dg), edu = ToDouble(du), dh = ToDouble(acc);
            Elementwise.SwiGluBackwardCore<TV>(a, b, acc, dg, du);
            ElementwiseReference.SwiGluBackward<double>(da, db, dh, edg, edu);
            Close(edg, dg, Rtol, 1e-5, $"SwiGluBackward dg n={n}");
            Close(edu, du, Rtol, 1e-5, $"SwiGluBackward du n={n}");
        }
    }

    private static void Backward<TV, TOp>(float[] x, float[] dy, float[] start, Action<double[], double[], double[]> reference, string what)
        where TV : struct, IVec<TV> where TOp : struct, ITernaryOp
    {
        float[] dx = (float[])start.Clone();
        double[] e = ToDouble(start);
        Map.Ternary<TV, TOp>(x, dy, dx, dx, default);
        reference(ToDouble(x), ToDouble(dy), e);
        Close(e, dx, Rtol, 1e-5, what);
    }

    [Fact]
    public void PublicEntryPointsMatchReference()
    {
        var rng = new Rng(5);
        const int n = 77;
        float[] a = Rand(rng, n), b = Rand(rng, n), y = new float[n];
        double[] da = ToDouble(a), db = ToDouble(b), e = new double[n];
        Elementwise.Add(a, b, y); ElementwiseReference.Add<double>(da, db, e); Close(e, y, 2e-7, 0, "Add");
        Elementwise.Sub(a, b, y); ElementwiseReference.Sub<double>(da, db, e); Close(e, y, 2e-7, 0, "Sub");
        Elementwise.Mul(a, b, y); ElementwiseReference.Mul<double>(da, db, e); Close(e, y, 2e-7, 0, "Mul");
        Elementwise.Scale(a, 3f, y); ElementwiseReference.Scale<double>(da, 3, e); Close(e, y, 2e-7, 0, "Scale");
        Elementwise.SiLU(a, y); ElementwiseReference.SiLU<double>(da, e); Close(e, y, Rtol, Atol, "SiLU");
        Elementwise.Gelu(a, y, GeluApproximation.Tanh); ElementwiseReference.Gelu<double>(da, e, GeluApproximation.Tanh); Close(e, y, Rtol, Atol, "GeluTanh");
        Elementwise.Gelu(a, y, GeluApproximation.Exact); ElementwiseReference.Gelu<double>(da, e, GeluApproximation.Exact); Close(e, y, Rtol, 2e-6, "Gelu");
        Elementwise.SwiGlu(a, b, y); ElementwiseReference.SwiGlu<double>(da, db, e); Close(e, y, Rtol, Atol, "SwiGlu");
        Elementwise.Fill(y, 2f); Elementwise.AddScaled(y, -0.5f, a);
        for (int i = 0; i < n; i++) Assert.Equal(2f - 0.5f * a[i], y[i], 1e-6f);
        Elementwise.Copy(b, y); Assert.Equal(b, y);
        Elementwise.Zero(y); Assert.All(y, v => Assert.Equal(0f, v));

        float[] dx = Rand(rng, n);
        double[] edx = ToDouble(dx);
        Elementwise.SiLUBackward(a, b, dx); ElementwiseReference.SiLUBackward<double>(da, db, edx);
        Elementwise.GeluBackward(a, b, dx, GeluApproximation.Exact); ElementwiseReference.GeluBackward<double>(da, db, edx, GeluApproximation.Exact);
        Elementwise.GeluBackward(a, b, dx, GeluApproximation.Tanh); ElementwiseReference.GeluBackward<double>(da, db, edx, GeluApproximation.Tanh);
        Close(edx, dx, Rtol, 1e-5, "activation backward chain");
        float[] dg = new float[n], du = new float[n];
        double[] edg = new double[n], edu = new double[n];
        Elementwise.SwiGluBackward(a, b, dx, dg, du); ElementwiseReference.SwiGluBackward<double>(da, db, ToDouble(dx), edg, edu);
        Close(edg, dg, Rtol, 1e-5, "SwiGluBackward dg");
        Close(edu, du, Rtol, 1e-5, "SwiGluBackward du");
    }

    [Theory]
    [InlineData(1, 7)]
    [InlineData(3, 7)]
    [InlineData(5, 33)]
    [InlineData(2, 1)]
    [InlineData(0, 4)]
    public void RowBiasMatchesReference(int rows, int cols)
    {
        var rng = new Rng((ulong)(rows * 100 + cols));
        float[] y = Rand(rng, rows * cols), bias = Rand(rng, cols), dBias = Rand(rng, cols);
        double[] ey = ToDouble(y), edb = ToDouble(dBias);
        Elementwise.AddRowBias(y, bias, rows, cols);
        ElementwiseReference.AddRowBias<double>(ey, ToDouble(bias), rows, cols);
        Close(ey, y, 2e-7, 0, "AddRowBias");
        Elementwise.AddRowBiasBackward(y, dBias, rows, cols);
        ElementwiseReference.AddRowBiasBackward<double>(ey, edb, rows, cols);
        Close(edb, dBias, 1e-6, 1e-6, "AddRowBiasBackward");
    }

    [Fact]
    public void ErfReferenceIsAccurateAndVectorErfIsWithinItsBound()
    {
        (double x, double erf)[] known =
        [
            (0, 0), (0.1, 0.1124629160182849), (0.5, 0.5204998778130465), (1, 0.8427007929497149),
            (2, 0.9953222650189527), (2.9, 0.9999589021219005), (3, 0.9999779095030014),
            (3.5, 0.9999992569016276), (5, 0.9999999999984626), (-1, -0.8427007929497149),
        ];
        foreach (var (x, erf) in known)
            Assert.True(Math.Abs(ElementwiseReference.Erf(x) - erf) < 2e-15, $"Erf({x}) = {ElementwiseReference.Erf(x):R}, expected {erf:R}");
        for (double x = -6; x <= 6; x += 0.01)
            Assert.True(Math.Abs(VMath.Erf((float)x) - ElementwiseReference.Erf((double)(float)x)) < 3e-7, $"VMath.Erf({x})");
    }

    [Theory]
    [InlineData(GeluApproximation.Exact)]
    [InlineData(GeluApproximation.Tanh)]
    public void GeluBackwardMatchesFiniteDifferences(GeluApproximation kind)
    {
        var rng = new Rng(3);
        double[] x = RandD(rng, 9, -4, 4), w = RandD(rng, 9);
        double Loss(double[] v) { var y = new double[v.Length]; ElementwiseReference.Gelu<double>(v, y, kind); return GradCheck.Weighted(y, w); }
        var g = new double[x.Length];
        ElementwiseReference.GeluBackward<double>(x, w, g, kind);
        GradCheck.Check($"Gelu {kind}", Loss, x, g);
    }

    [Fact]
    public void SiLUAndSwiGluBackwardMatchFiniteDifferences()
    {
        var rng = new Rng(4);
        const int n = 8;
        double[] x = RandD(rng, n, -5, 5), u = RandD(rng, n), w = RandD(rng, n);
        double SiLULoss(double[] v) { var y = new double[n]; ElementwiseReference.SiLU<double>(v, y); return GradCheck.Weighted(y, w); }
        var g = new double[n];
        ElementwiseReference.SiLUBackward<double>(x, w, g);
        GradCheck.Check("SiLU", SiLULoss, x, g);

        double[] gu = [.. x, .. u];
        double SwiLoss(double[] v) { var h = new double[n]; ElementwiseReference.SwiGlu<double>(v.AsSpan(0, n), v.AsSpan(n), h); return GradCheck.Weighted(h, w); }
        var dgu = new double[2 * n];
        ElementwiseReference.SwiGluBackward<double>(x, u, w, dgu.AsSpan(0, n), dgu.AsSpan(n));
        GradCheck.Check("SwiGlu", SwiLoss, gu, dgu);

        double[] bias = RandD(rng, 3), dy = RandD(rng, 6);
        double BiasLoss(double[] b) { var y = new double[6]; ElementwiseReference.AddRowBias<double>(y, b, 2, 3); return GradCheck.Weighted(y, dy); }
        var db = new double[3];
        ElementwiseReference.AddRowBiasBackward<double>(dy, db, 2, 3);
        GradCheck.Check("AddRowBias", BiasLoss, bias, db);
    }

    [Fact]
    public void MismatchedLengthsNameOpAndTensor()
    {
        var e = Assert.Throws<ShapeException>(() => Elementwise.Add(new float[4], new float[5], new float[4]));
        Assert.Contains("Elementwise.Add", e.Message);
        Assert.Contains("'b'", e.Message);
        e = Assert.Throws<ShapeException>(() => Elementwise.SwiGluBackward(new float[4], new float[4], new float[4], new float[4], new float[3]));
        Assert.Contains("'du'", e.Message);
        e = Assert.Throws<ShapeException>(() => Elementwise.AddRowBias(new float[6], new float[2], 2, 3));
        Assert.Contains("'bias'", e.Message);
        e = Assert.Throws<ShapeException>(() => Elementwise.AddRowBiasBackward(new float[5], new float[3], 2, 3));
        Assert.Contains("'dy'", e.Message);
    }
}
