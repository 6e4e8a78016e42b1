using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tests.Tensors;

public class GemmTests
{
    public enum BType { F32, F16, BF16 }

    // Tiny blocks so that small shapes cross every KC/MC/NC edge of the packed path.
    private static readonly GemmBlocking s_tiny = new(0, 0, KC: 16, MC: 30, NC: 70);

    /// <summary>Inputs with B in its stored dtype and the same B widened, plus the double reference.</summary>
    private sealed class Case
    {
        public required GemmLayout Layout;
        public required int M, K, N;
        public required float[] A, BWide, C0;
        public required Array B;

        public static Case Make(GemmLayout layout, BType bt, int m, int k, int n, ulong seed)
        {
            var rng = new Rng(seed);
            var a = new float[m * k];
            var bf = new float[k * n];
            var c0 = new float[m * n];
            rng.FillUniform(a, -1, 1);
            rng.FillUniform(bf, -1, 1);
            rng.FillUniform(c0, -1, 1);
            Array b;
            float[] wide;
            switch (bt)
            {
                case BType.F16:
                    var h = bf.Select(v => (Half)v).ToArray();
                    b = h; wide = h.Select(v => (float)v).ToArray(); break;
                case BType.BF16:
                    var u = bf.Select(BFloat16.FromSingle).ToArray();
                    b = u; wide = u.Select(BFloat16.ToSingle).ToArray(); break;
                default: b = bf; wide = bf; break;
            }
            return new Case { Layout = layout, M = m, K = k, N = n, A = a, B = b, BWide = wide, C0 = c0 };
        }

        public float[] Run(bool accumulate, SimdWidth width = SimdWidth.V512, int threads = 1, int rows = 0, GemmBlocking? blocking = null)
        {
            var c = (float[])C0.Clone();
            if (width == SimdWidth.V512 && (int)Simd.Width < 512) width = Simd.Width;
            switch (B)
            {
                case float[] f: Gemm.Compute<float>(Layout, A, f, c, M, K, N, accumulate, width, threads, rows, blocking); break;
                case Half[] h: Gemm.Compute<Half>(Layout, A, h, c, M, K, N, accumulate, width, threads, rows, blocking); break;
                case ushort[] u: Gemm.Compute<ushort>(Layout, A, u, c, M, K, N, accumulate, width, threads, rows, blocking); break;
            }
            return c;
        }

        public void AssertClose(float[] got, bool accumulate)
        {
            var a = A.Select(v => (double)v).ToArray();
            var b = BWide.Select(v => (double)v).ToArray();
            var c = C0.Select(v => (double)v).ToArray();
            switch (Layout)
            {
                case GemmLayout.ABt: GemmReference.ABt<double>(a, b, c, M, K, N, accumulate); break;
                case GemmLayout.AB: GemmReference.AB<double>(a, b, c, M, K, N, accumulate); break;
                default: GemmReference.AtB<double>(a, b, c, M, K, N, accumulate); break;
            }
            double tol = 2e-6 * (K + 2);
            for (int i = 0; i < c.Length; i++)
                if (!(Math.Abs(got[i] - c[i]) <= tol))
                    Assert.Fail($"{Layout} {M}x{K}x{N} acc={accumulate}: C[{i / N},{i % N}] = {got[i]}, expected {c[i]} (tol {tol:g3})");
        }
    }

    public static TheoryData<int, BType, bool> AllCombos()
    {
        var d = new TheoryData<int, BType, bool>();
        foreach (var l in Enum.GetValues<GemmLayout>())
            foreach (var bt in Enum.GetValues<BType>())
                foreach (bool acc in new[] { false, true })
                    d.Add((int)l, bt, acc);
        return d;
    }

    private static readonly (int M, int K, int N)[] s_shapes =
    [
        (1, 1, 1), (7, 13, 5), (1, 37, 70), (3, 50, 33), (8, 20, 131), (9, 1, 40), (19, 1, 33),
        (13, 200, 65), (16, 33, 70), (17, 50, 70), (25, 390, 97), (40, 3, 1), (0, 5, 3), (3, 0, 4), (5, 4, 0),
    ];

    [Theory]
    [MemberData(nameof(AllCombos))]
    public void MatchesReferenceOnOddShapes(int layoutId, BType bt, bool accumulate)
    {
        var layout = (GemmLayout)layoutId;
        foreach (var (m, k, n) in s_shapes)
        {
            var cs = Case.Make(layout, bt, m, k, n, (ulong)(m * 1000 + k * 10 + n));
            cs.AssertClose(cs.Run(accumulate), accumulate);
            cs.AssertClose(cs.Run(accumulate, blocking: s_tiny), accumulate);
        }
    }

    [Theory]
    [MemberData(nameof(AllCombos))]
    public void DefaultBlockingCrossesKcMcNcEdges(int layoutId, BType bt, bool accumulate)
    {
        var layout = (GemmLayout)layoutId;
        // M past one MC block (V512: 120 rows), K past one KC block (1024) with a ragged tail.
        var cs = Case.Make(layout, bt, 130, 1030, 45, 11);
        cs.AssertClose(cs.Run(accumulate, threads: 2), accumulate);
    }

    [Fact]
    public void NcEdgeWithDefaultBlocking()
    {
        // N past two NC blocks (V512: 2048 columns), with a ragged tail; M above the small-M path.
        var cs = Case.Make(GemmLayout.AB, BType.F32, 20, 9, 4133, 5);
        cs.AssertClose(cs.Run(false), false);
        cs.AssertClose(cs.Run(true, threads: 2), true);
    }

    public static TheoryData<SimdWidth, int> WidthsAndRows()
    {
        var d = new TheoryData<SimdWidth, int>();
        foreach (var w in new[] { SimdWidth.V512, SimdWidth.V256, SimdWidth.V128 })
            foreach (int r in new[] { 0, 6, 12, 14 })
                d.Add(w, r);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(WidthsAndRows))]
    public void EveryWidthAndKernelShape(SimdWidth width, int rows)
    {
        bool accelerated = width switch
        {
            SimdWidth.V512 => V512.IsAccelerated, SimdWidth.V256 => V256.IsAccelerated, _ => V128.IsAccelerated,
        };
        Skip.IfNot(accelerated, $"{width} is not accelerated here");
        foreach (var layout in Enum.GetValues<GemmLayout>())
            foreach (var bt in Enum.GetValues<BType>())
                foreach (var (m, k, n) in new[] { (29, 77, 45), (5, 33, 71), (1, 40, 3) })
                {
                    var cs = Case.Make(layout, bt, m, k, n, 3);
                    cs.AssertClose(cs.Run(true, width, 1, rows, s_tiny), true);
                    cs.AssertClose(cs.Run(false, width, 2, rows), false);
                }
    }

    [Fact]
    public void ThreadCountsGiveCorrectAndIdenticalResults()
    {
        foreach (var layout in Enum.GetValues<GemmLayout>())
            foreach (var (m, k, n) in new[] { (96, 130, 300), (4, 300, 2000), (300, 130, 64) })
            {
                var cs = Case.Make(layout, BType.F32, m, k, n, 21);
                var one = cs.Run(true, threads: 1);
                cs.AssertClose(one, true);
                foreach (int t in new[] { 2, 3 })
                    Assert.Equal(one, cs.Run(true, threads: t));
            }
    }

    [Fact]
    public void RepeatedRunsAreBitIdentical()
    {
        var cs = Case.Make(GemmLayout.ABt, BType.BF16, 150, 260, 170, 99);
        var first = cs.Run(false, threads: 2);
        for (int r = 0; r < 3; r++) Assert.Equal(first, cs.Run(false, threads: 2));
    }

    [Fact]
    public void PublicApiMatchesReference()
    {
        var cs = Case.Make(GemmLayout.ABt, BType.F32, 33, 65, 47, 8);
        var c = (float[])cs.C0.Clone();
        Gemm.ABt<float>(cs.A, (float[])cs.B, c, 33, 65, 47, accumulate: true);
        cs.AssertClose(c, true);

        var ab = Case.Make(GemmLayout.AB, BType.F16, 2, 65, 47, 8);
        c = (float[])ab.C0.Clone();
        Gemm.AB<Half>(ab.A, (Half[])ab.B, c, 2, 65, 47);
        ab.AssertClose(c, false);

        var atb = Case.Make(GemmLayout.AtB, BType.BF16, 40, 6, 50, 8);
        c = (float[])atb.C0.Clone();
        Gemm.AtB<ushort>(atb.A, (ushort[])atb.B, c, 40, 6, 50);
        atb.AssertClose(c, false);
    }

    [Fact]
    public void KZeroClearsOrKeepsC()
    {
        var c = new float[] { 1, 2, 3, 4, 5, 6 };
        Gemm.AB<float>([], [], c, 2, 0, 3, accumulate: true);
        Assert.Equal([1f, 2, 3, 4, 5, 6], c);
        Gemm.AB<float>([], [], c, 2, 0, 3);
        Assert.All(c, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void BadShapesNameOpAndDims()
    {
        var a = new float[6];
        var b = new float[6];
        var c = new float[4];
        var e = Assert.Throws<ShapeException>(() => Gemm.ABt<float>(a, b, c, 2, 3, 3));
        Assert.Contains("Gemm.ABt", e.Message);
        Assert.Contains("M=2, K=3, N=3", e.Message);
        e = Assert.Throws<ShapeException>(() => Gemm.AB<float>(a, new float[5], new float[4], 2, 3, 2));
        Assert.Contains("Gemm.AB", e.Message);
        Assert.Contains("B has 5", e.Message);
        e = Assert.Throws<ShapeException>(() => Gemm.AtB<Half>(new float[5], new Half[6], new float[4], 2, 3, 2));
        Assert.Contains("Gemm.AtB", e.Message);
        Assert.Contains("A has 5", e.Message);
        e = Assert.Throws<ShapeException>(() => Gemm.AB<float>(a, b, c, -1, 3, 2));
        Assert.Contains("M = -1", e.Message);
        Assert.Throws<NotSupportedException>(() => Gemm.AB<int>(a, new int[6], new float[4], 2, 3, 2));
    }

    [Fact]
    public unsafe void WideningIsExactForEveryHalfAndBf16Pattern()
    {
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var halves = bits.Select(BitConverter.UInt16BitsToHalf).ToArray();
        var got = new float[65536 + 3];
        fixed (Half* h = halves)
        fixed (float* g = got)
            GemmPacking.Widen(h, g + 3, 65536);        // unaligned destination on purpose
        for (int i = 0; i < 65536; i++)
        {
            float want = (float)halves[i];
            Assert.True(float.IsNaN(want) ? float.IsNaN(got[i + 3]) : want.Equals(got[i + 3]), $"F16 {i:X4}");
        }
        fixed (ushort* u = bits)
        fixed (float* g = got)
            GemmPacking.Widen(u, g + 1, 65535);
        for (int i = 0; i < 65535; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(BFloat16.ToSingle(bits[i])), BitConverter.SingleToInt32Bits(got[i + 1]));
    }
}
