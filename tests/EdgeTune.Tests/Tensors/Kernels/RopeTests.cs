using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class RopeTests
{
    // (T, H, D, rotary dim)
    private static readonly (int T, int H, int D, int R)[] Shapes =
    [
        (1, 1, 2, 2), (3, 2, 6, 6), (2, 3, 10, 6), (5, 2, 64, 64), (4, 3, 34, 34), (2, 2, 128, 96), (3, 1, 40, 32), (1, 4, 16, 8),
    ];

    [SkippableTheory, InlineData(128), InlineData(256), InlineData(512)]
    public void VectorPathMatchesReference(int bits)
        => ForWidth(bits, Shapes_<V128>, Shapes_<V256>, Shapes_<V512>);

    [Fact]
    public void ScalarPathMatchesReference() => Shapes_<V128>(useVectors: false);

    private static void Shapes_<TV>() where TV : struct, IVec<TV> => Shapes_<TV>(useVectors: true);

    private static void Shapes_<TV>(bool useVectors) where TV : struct, IVec<TV>
    {
        var rng = new Rng(61);
        foreach (var (t, h, d, r) in Shapes)
            foreach (RopeStyle style in new[] { RopeStyle.Interleaved, RopeStyle.HalfSplit })
                foreach (double theta in new[] { 10000.0, 500000.0 })
                {
                    var table = new RopeTable(64, r, theta);
                    int n = t * h * d, pos0 = rng.NextInt(20);
                    int[] positions = Enumerable.Range(0, t).Select(_ => rng.NextInt(64)).ToArray();
                    int[] consecutive = Enumerable.Range(pos0, t).ToArray();
                    double[] invFreq = RopeTable.InverseFrequencies(r, theta);
                    string what = $"T={t} H={h} D={d} R={r} {style} theta={theta} width={TV.Count * 32}";

                    foreach (bool explicitPositions in new[] { false, true })
                    {
                        int[] pos = explicitPositions ? positions : consecutive;
                        float[] x = Rand(rng, n), dy = Rand(rng, n), dx = Rand(rng, n);
                        double[] ex = ToDouble(x), edx = ToDouble(dx);
                        Rope.Core<TV>(x, x, t, h, d, pos0, explicitPositions ? positions : default, table, style, backward: false, useVectors);
                        RopeReference.Forward<double>(ex, t, h, d, pos, invFreq, style);
                        Close(ex, x, 1e-5, 2e-5, "forward " + what);
                        Rope.Core<TV>(dy, dx, t, h, d, pos0, explicitPositions ? positions : default, table, style, backward: true, useVectors);
                        RopeReference.Backward<double>(ToDouble(dy), edx, t, h, d, pos, invFreq, style);
                        Close(edx, dx, 1e-5, 2e-5, "backward " + what);
                    }
                }
    }

    [Fact]
    public void PublicEntryPointsMatchReference()
    {
        var rng = new Rng(62);
        const int t = 3, h = 2, d = 12;
        var table = new RopeTable(32, 8, 1e6);
        double[] invFreq = RopeTable.InverseFrequencies(8, 1e6);
        foreach (RopeStyle style in new[] { RopeStyle.Interleaved, RopeStyle.HalfSplit })
        {
            float[] x = Rand(rng, t * h * d), x2 = (float[])x.Clone(), dy = Rand(rng, t * h * d), dx = new float[t * h * d];
            double[] ex = ToDouble(x), edx = new double[t * h * d];
            Rope.Forward(x, t, h, d, 5, table, style);
            Rope.Forward(x2, t, h, d, [5, 6, 7], table, style);
            RopeReference.Forward<double>(ex, t, h, d, [5, 6, 7], invFreq, style);
            Close(ex, x, 1e-5, 2e-5, $"Forward {style}");
            Assert.Equal(x, x2);
            Rope.Backward(dy, dx, t, h, d, [9, 0, 31], table, style);
            RopeReference.Backward<double>(ToDouble(dy), edx, t, h, d, [9, 0, 31], invFreq, style);
            Close(edx, dx, 1e-5, 2e-5, $"Backward {style}");
            Array.Clear(edx);
            Rope.Backward(dy, dx, t, h, d, 2, table, style);
            RopeReference.Backward<double>(ToDouble(dy), edx, t, h, d, [2, 3, 4], invFreq, style);
            RopeReference.Backward<double>(ToDouble(dy), edx, t, h, d, [9, 0, 31], invFreq, style);
            Close(edx, dx, 1e-5, 4e-5, $"Backward accumulates {style}");
        }
    }

    [Theory]
    [InlineData(2, 16)]
    [InlineData(6, 6)]
    [InlineData(64, 64)]
    [InlineData(96, 128)]
    public void InterleavedEqualsHalfSplitAfterChannelPermutation(int rot, int d)
    {
        var rng = new Rng(63);
        const int t = 4, h = 3;
        var table = new RopeTable(16, rot, 10000);
        float[] hs = Rand(rng, t * h * d), il = new float[hs.Length];
        // half-split channel i <-> interleaved 2i, half-split channel R/2+i <-> interleaved 2i+1; the rest unchanged
        int Perm(int c) => c >= rot ? c : c < rot / 2 ? 2 * c : 2 * (c - rot / 2) + 1;
        for (int row = 0; row < t * h; row++)
            for (int c = 0; c < d; c++) il[row * d + Perm(c)] = hs[row * d + c];
        Rope.Forward(hs, t, h, d, 3, table, RopeStyle.HalfSplit);
        Rope.Forward(il, t, h, d, 3, table, RopeStyle.Interleaved);
        for (int row = 0; row < t * h; row++)
            for (int c = 0; c < d; c++)
                Assert.Equal(hs[row * d + c], il[row * d + Perm(c)]);
    }

    [Fact]
    public void PositionZeroIsIdentityAndBackwardInvertsForward()
    {
        var rng = new Rng(64);
        const int t = 1, h = 5, d = 32;
        var table = new RopeTable(100, d, 10000);
        foreach (RopeStyle style in new[] { RopeStyle.Interleaved, RopeStyle.HalfSplit })
        {
            float[] x = Rand(rng, t * h * d), y = (float[])x.Clone();
            Rope.Forward(y, t, h, d, 0, table, style);
            Assert.Equal(x, y);

            float[] z = Rand(rng, 4 * h * d), back = new float[z.Length], rotated = (float[])z.Clone();
            Rope.Forward(rotated, 4, h, d, 50, table, style);
            Rope.Backward(rotated, back, 4, h, d, 50, table, style);
            Close(z, back, 1e-5, 1e-5, $"R(-θ)R(θ) = I {style}");
        }
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(65);
        const int t = 2, h = 2, d = 6;
        double[] invFreq = RopeTable.InverseFrequencies(4, 10000);
        int[] pos = [3, 11];
        foreach (RopeStyle style in new[] { RopeStyle.Interleaved, RopeStyle.HalfSplit })
        {
            double[] x = RandD(rng, t * h * d), w = RandD(rng, t * h * d), g = new double[t * h * d];
            double Loss(double[] v) { var y = (double[])v.Clone(); RopeReference.Forward<double>(y, t, h, d, pos, invFreq, style); return GradCheck.Weighted(y, w); }
            RopeReference.Backward<double>(w, g, t, h, d, pos, invFreq, style);
            GradCheck.Check($"Rope {style}", Loss, x, g);
        }
    }

    [Fact]
    public void CustomInverseFrequenciesAreUsed()
    {
        // a llama3-style scaled spectrum: the caller computes invFreq, the table just uses it
        double[] invFreq = RopeTable.InverseFrequencies(8, 500000).Select((f, i) => i >= 2 ? f / 8 : f).ToArray();
        var table = new RopeTable(40, invFreq);
        Assert.Equal(8, table.RotaryDim);
        Assert.Equal((float)Math.Cos(37 * invFreq[3]), table.Cos(37)[3]);
        Assert.Equal((float)Math.Sin(37 * invFreq[3]), table.Sin(37)[3]);
        var rng = new Rng(66);
        float[] x = Rand(rng, 2 * 8);
        double[] ex = ToDouble(x);
        Rope.Forward(x, 2, 1, 8, 37, table, RopeStyle.HalfSplit);
        RopeReference.Forward<double>(ex, 2, 1, 8, [37, 38], invFreq, RopeStyle.HalfSplit);
        Close(ex, x, 1e-5, 2e-5, "custom invFreq");
    }

    [Fact]
    public void BadShapesAndPositionsAreNamed()
    {
        var table = new RopeTable(8, 8);
        var e = Assert.Throws<ShapeException>(() => Rope.Forward(new float[2 * 6], 2, 1, 6, 0, table, RopeStyle.HalfSplit));
        Assert.Contains("Rope.Forward", e.Message);
        Assert.Contains("rotary dim 8", e.Message);
        e = Assert.Throws<ShapeException>(() => Rope.Forward(new float[15], 2, 1, 8, 0, table, RopeStyle.Interleaved));
        Assert.Contains("'x'", e.Message);
        e = Assert.Throws<ShapeException>(() => Rope.Backward(new float[16], new float[15], 2, 1, 8, 0, table, RopeStyle.Interleaved));
        Assert.Contains("'dx'", e.Message);
        e = Assert.Throws<ShapeException>(() => Rope.Forward(new float[16], 2, 1, 8, [1], table, RopeStyle.Interleaved));
        Assert.Contains("'positions'", e.Message);
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => Rope.Forward(new float[16], 2, 1, 8, 7, table, RopeStyle.Interleaved));
        Assert.Contains("position 8 of row t=1", r.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.Forward(new float[16], 2, 1, 8, [0, -1], table, RopeStyle.Interleaved));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RopeTable(8, 7));
    }
}
