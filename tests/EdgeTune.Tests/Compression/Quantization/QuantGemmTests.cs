using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors.Quantized.Internal;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tests.Compression.Quantization;

public class QuantGemmTests
{
    // Tiny blocks: K blocks that start inside quantization blocks, several N blocks and M blocks.
    private static readonly GemmBlocking s_tiny = new(0, 0, KC: 40, MC: 30, NC: 70);

    public static TheoryData<QuantFormat, SimdWidth> FormatsAndWidths()
    {
        var data = new TheoryData<QuantFormat, SimdWidth>();
        foreach (var f in Enum.GetValues<QuantFormat>())
            foreach (var w in new[] { SimdWidth.Scalar, SimdWidth.V128, SimdWidth.V256, SimdWidth.V512 })
                data.Add(f, w);
        return data;
    }

    private static QuantizedMatrix Weight(QuantFormat format, int n, int k, ulong seed)
    {
        var w = new float[n * k];
        new Rng(seed).FillGaussian(w, 0, 0.3f);
        return QuantizedMatrix.Quantize(w, n, k, format, "w");
    }

    private static float[] Uniform(int count, ulong seed)
    {
        var a = new float[count];
        new Rng(seed).FillUniform(a, -1, 1);
        return a;
    }

    /// <summary>Double reference on the dequantized weight, and Σ|a||w| per output for the tolerance.</summary>
    private static (double[] Want, double[] Mag) Reference(GemmLayout layout, float[] a, float[] wd, float[] c0, int m, int n, int k, bool accumulate)
    {
        int inner = layout == GemmLayout.ABt ? k : n, outer = layout == GemmLayout.ABt ? n : k;
        var want = new double[m * outer];
        var mag = new double[m * outer];
        for (int i = 0; i < m; i++)
            for (int o = 0; o < outer; o++)
            {
                double s = accumulate ? c0[i * outer + o] : 0, g = Math.Abs(s);
                for (int p = 0; p < inner; p++)
                {
                    double w = layout == GemmLayout.ABt ? wd[o * k + p] : wd[p * k + o];
                    s += a[i * inner + p] * w;
                    g += Math.Abs(a[i * inner + p] * w);
                }
                want[i * outer + o] = s;
                mag[i * outer + o] = g;
            }
        return (want, mag);
    }

    [Theory, MemberData(nameof(FormatsAndWidths))]
    public void PackedProductsMatchTheReferenceOnDequantizedWeights(QuantFormat format, SimdWidth width)
    {
        int bs = format.Info().BlockSize;
        var shapes = bs == 1
            ? new[] { (1, 7, 7), (17, 33, 45), (31, 50, 97) }
            : new[] { (1, 7, bs), (17, 33, 3 * bs), (31, 50, 5 * bs) };
        ulong seed = 100;
        foreach (var (m, n, k) in shapes)
        {
            using var w = Weight(format, n, k, seed++);
            var wd = w.Dequantize();
            foreach (var layout in new[] { GemmLayout.ABt, GemmLayout.AB })
                foreach (bool accumulate in new[] { false, true })
                    foreach (var (threads, blocking) in new (int, GemmBlocking?)[] { (1, null), (3, s_tiny) })
                    {
                        int inner = layout == GemmLayout.ABt ? k : n, outer = layout == GemmLayout.ABt ? n : k;
                        var a = Uniform(m * inner, seed++);
                        var c = Uniform(m * outer, seed++);
                        var (want, mag) = Reference(layout, a, wd, c, m, n, k, accumulate);
                        QuantGemm.Compute(layout, a, w, c, m, accumulate, width, threads, blocking, decode: false);
                        for (int i = 0; i < c.Length; i++)
                            Assert.True(Math.Abs(c[i] - want[i]) <= 1e-5 * mag[i] + 1e-6,
                                $"{format} {width} {layout} M={m} N={n} K={k} acc={accumulate} t={threads}: [{i}] {c[i]} vs {want[i]}");
                    }
        }
    }

    [Theory]
    [InlineData(QuantFormat.Q4_0)]
    [InlineData(QuantFormat.NF4)]
    public void ResultsDoNotDependOnTheThreadCount(QuantFormat format)
    {
        int m = 40, n = 90, k = 256;
        using var w = Weight(format, n, k, 7);
        foreach (var layout in new[] { GemmLayout.ABt, GemmLayout.AB })
            foreach (int rows in new[] { 2, m })
            {
                int inner = layout == GemmLayout.ABt ? k : n, outer = layout == GemmLayout.ABt ? n : k;
                var a = Uniform(rows * inner, 8);
                var c1 = new float[rows * outer];
                var c4 = new float[rows * outer];
                QuantGemm.Compute(layout, a, w, c1, rows, false, Simd.Width, 1, s_tiny, decode: true);
                QuantGemm.Compute(layout, a, w, c4, rows, false, Simd.Width, 4, s_tiny, decode: true);
                Assert.Equal(c1, c4);
            }
    }

    public static TheoryData<QuantFormat, int> DecodeCases()
    {
        var data = new TheoryData<QuantFormat, int>();
        foreach (var f in Enum.GetValues<QuantFormat>())
            foreach (var p in new[] { IntDotPath.Avx512, IntDotPath.Avx2, IntDotPath.Vector128, IntDotPath.Scalar })
                data.Add(f, (int)p);
        return data;
    }

    /// <summary>
    /// The decode path against the exact product on the dequantized weight. Integer formats quantize
    /// x to Q8 blocks, so the stated tolerance is that error's bound, Σ_blocks (d_x/2)·Σ|w|, plus float
    /// rounding (1e-5·Σ|x·w|); it must also match the product with the quantized x to float rounding.
    /// </summary>
    [Theory, MemberData(nameof(DecodeCases))]
    public void DecodeMatchesTheReferenceWithinTheActivationQuantizationBound(QuantFormat format, int pathId)
    {
        var path = (IntDotPath)pathId;
        int bs = Math.Max(32, format.Info().BlockSize);
        ulong seed = 300;
        // Block counts 1, 5, 2, 17 and 36: odd tails, one 16-block scale vector plus a tail, several (AVX-512 path).
        var shapes = new List<(int, int, int)> { (1, 7, bs), (3, 33, 5 * bs), (4, 19, 2 * bs), (2, 9, 17 * bs), (1, 6, 36 * bs) };
        if (format == QuantFormat.Int8) shapes.Add((2, 5, 45));   // not a multiple of 32: fused float path
        foreach (var (m, n, k) in shapes)
        {
            using var w = Weight(format, n, k, seed++);
            var wd = w.Dequantize();
            foreach (bool accumulate in new[] { false, true })
            {
                var x = Uniform(m * k, seed++);
                var c = Uniform(m * n, seed++);
                var (want, mag) = Reference(GemmLayout.ABt, x, wd, c, m, n, k, accumulate);
                bool integer = QuantGemv.UsesIntegerDot(format, k);
                var xq = new sbyte[k];
                var xs = new float[k / 32];
                var c0 = (float[])c.Clone();
                QuantGemv.Run(x, w, c, m, accumulate, Simd.Width, 2, path);
                for (int i = 0; i < m; i++)
                {
                    QuantIntDot.QuantizeActivation(x.AsSpan(i * k, k), xq, xs);
                    for (int j = 0; j < n; j++)
                    {
                        double bound = 1e-5 * mag[i * n + j] + 1e-6, withQx = accumulate ? c0[i * n + j] : 0;
                        for (int b = 0; b < k / 32; b++)
                            for (int p = b * 32; p < b * 32 + 32; p++)
                            {
                                if (integer) bound += xs[b] / 2 * Math.Abs(wd[j * k + p]);
                                withQx += (double)xq[p] * xs[b] * wd[j * k + p];
                            }
                        float got = c[i * n + j];
                        Assert.True(Math.Abs(got - want[i * n + j]) <= bound, $"{format} {path} M={m} N={n} K={k}: {got} vs {want[i * n + j]} (bound {bound})");
                        if (integer)
                            Assert.True(Math.Abs(got - withQx) <= 1e-5 * mag[i * n + j] + 1e-6, $"{format} {path}: {got} vs quantized-x product {withQx}");
                    }
                }
            }
        }
    }

    /// <summary>The AVX-512 path widens a row's f16 block scales sixteen at a time (byte permutes for full groups of Q4_0
    /// and Q8_0 blocks, gathers for the rest): every one of the 65,536 f16 patterns, Inf, NaN and subnormals included,
    /// must come out as System.Half's own conversion, in full and partial groups of both block sizes.</summary>
    [SkippableFact]
    public unsafe void Avx512RowScalesConvertEveryHalfExactly()
    {
        Skip.IfNot(QuantIntDot.Avx512Supported, "this machine has no AVX-512 BW (the path is not used here)");
        foreach (int stride in new[] { 18, 34 })
            foreach (int blocks in new[] { 16, 21, 7, 29 })
            {
                var row = new byte[blocks * stride];
                var dw = new float[QuantIntDot.PaddedBlocks(blocks)];
                for (int start = 0; start < 65536; start += blocks)
                {
                    for (int b = 0; b < blocks; b++) BitConverter.TryWriteBytes(row.AsSpan(b * stride, 2), (ushort)((start + b) & 0xFFFF));
                    fixed (byte* pr = row)
                    fixed (float* pd = dw)
                        QuantIntDot.RowScales(pr, blocks, stride, pd);
                    for (int b = 0; b < blocks; b++)
                    {
                        float want = (float)BitConverter.UInt16BitsToHalf((ushort)((start + b) & 0xFFFF));
                        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(dw[b]) || float.IsNaN(want) && float.IsNaN(dw[b]),
                            $"stride {stride}, half 0x{(start + b) & 0xFFFF:X4}: {dw[b]} vs {want}");
                    }
                    for (int b = blocks; b < dw.Length; b++) Assert.Equal(0f, dw[b]);
                }
            }
    }

    /// <summary>The VBMI Q4_0 kernel widens f16 scales from the upper halves of dwords: every one of the 65,536 patterns
    /// (Inf, NaN, subnormals) must come out as System.Half's conversion, whatever the lower halves hold.</summary>
    [SkippableFact]
    public void UpperHalvesToSinglesConvertsEveryHalfExactly()
    {
        Skip.IfNot(QuantIntDot.Q4VbmiSupported, "this machine has no AVX-512 VBMI (the kernel is not used here)");
        var rng = new Random(5);
        var lanes = new int[16];
        for (int start = 0; start < 65536; start += 16)
        {
            for (int i = 0; i < 16; i++) lanes[i] = (start + i) << 16 | rng.Next(0, 65536);
            var got = QuantIntDot.UpperHalvesToSingles(System.Runtime.Intrinsics.Vector512.Create(lanes));
            for (int i = 0; i < 16; i++)
            {
                float want = (float)BitConverter.UInt16BitsToHalf((ushort)(start + i));
                float g = got[i];
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(g) || float.IsNaN(want) && float.IsNaN(g),
                    $"half 0x{start + i:X4}: {g} vs {want}");
            }
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int mprotect(nint addr, nuint length, int prot);
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int munmap(nint addr, nuint length);

    /// <summary>A row that ends exactly where an unreadable page begins: widening its scales and the four-row Q4_0 dot
    /// must not touch a byte past it (a read there would kill the process, so this test fails by crashing).</summary>
    [SkippableFact]
    public unsafe void Avx512DecodeReadsNothingPastTheLastRow()
    {
        Skip.IfNot(QuantIntDot.Avx512Supported, "this machine has no AVX-512 BW (the path is not used here)");
        Skip.IfNot(OperatingSystem.IsLinux(), "the guard page is made with Linux mmap/mprotect");
        const int page = 4096;
        nint mem = mmap(0, 2 * page, 3 /* read|write */, 0x22 /* private|anonymous */, -1, 0);
        Assert.True(mem != -1, "mmap failed");
        try
        {
            Assert.Equal(0, mprotect(mem + page, page, 0));
            byte* end = (byte*)mem + page;
            foreach (int stride in new[] { 18, 34 })
                foreach (int blocks in new[] { 1, 2, 7, 18, 21, 48 })
                {
                    byte* row = end - blocks * stride;
                    new Span<byte>(row, blocks * stride).Fill(0x11);
                    var dw = new float[4 * QuantIntDot.PaddedBlocks(blocks)];
                    fixed (float* pd = dw) QuantIntDot.RowScales(row, blocks, stride, pd);
                    Assert.Equal((float)BitConverter.UInt16BitsToHalf(0x1111), dw[blocks - 1]);
                    if (stride != 18) continue;
                    // Four rows, the last ending at the guard page.
                    int rowBytes = blocks * 18, nbp = QuantIntDot.PaddedBlocks(blocks);
                    byte* first = end - 4 * rowBytes;
                    new Span<byte>(first, 4 * rowBytes).Fill(0x11);
                    var xq = new sbyte[blocks * 32]; var dx = new float[nbp]; var off = new float[nbp]; var res = new float[4];
                    fixed (float* pd = dw)
                    {
                        for (int r = 0; r < 4; r++) QuantIntDot.RowScales(first + r * rowBytes, blocks, 18, pd + r * nbp);
                        fixed (sbyte* px = xq) fixed (float* pdx = dx) fixed (float* po = off) fixed (float* pr = res)
                            QuantIntDot.DotQ4x4Avx512(first, rowBytes, blocks, px, pdx, po, pd, nbp, pr);
                    }
                    Assert.All(res, v => Assert.Equal(0f, v));
                    if (!QuantIntDot.Q4VbmiSupported) continue;
                    var xr = new sbyte[QuantIntDot.RegroupedBytes(blocks)];
                    res[0] = 1;
                    fixed (sbyte* pxr = xr) fixed (float* pdx = dx) fixed (float* po = off) fixed (float* pr = res)
                        QuantIntDot.DotQ4x4Vbmi(first, rowBytes, blocks, pxr, pdx, po, pr, 4 * rowBytes);
                    Assert.All(res, v => Assert.Equal(0f, v));
                }
        }
        finally { munmap(mem, 2 * page); }
    }

    /// <summary>The four-row VBMI Q4_0 kernel against the scalar integer dot, row by row: random code bytes and finite f16
    /// scales of both signs (subnormals included), x quantized from random floats, block counts with every tail (1..3
    /// blocks past a group of four) and rows that are not a multiple of four apart (the rows of a larger matrix). With
    /// the bytes after the four rows declared readable the tail reads into the next row, whose scales may be Inf or NaN
    /// (the last row here): nothing of it may reach the result.</summary>
    [SkippableFact]
    public unsafe void Q4VbmiKernelMatchesTheScalarDot()
    {
        Skip.IfNot(QuantIntDot.Q4VbmiSupported, "this machine has no AVX-512 VBMI (the kernel is not used here)");
        var rng = new Random(17);
        foreach (int blocks in new[] { 1, 2, 3, 4, 5, 7, 18, 21, 48 })
        {
            int rowBytes = blocks * 18, k = blocks * 32, nbp = QuantIntDot.PaddedBlocks(blocks);
            // Six rows: the kernel reads rows 0..3, or 1..4 (an odd start); row 5 only lies after them.
            var w = new byte[6 * rowBytes];
            rng.NextBytes(w);
            for (int r = 0; r < 6; r++)
                for (int b = 0; b < blocks; b++)
                {
                    // A finite f16 (exponent below 31), random sign; some subnormal. Row 5: Inf or NaN.
                    ushort h = (ushort)rng.Next(0, 0x7C00);
                    if (rng.Next(8) == 0) h &= 0x03FF;
                    if (r == 5) h = (ushort)(0x7C00 | (b % 2 == 0 ? 0 : 0x0200));
                    if (rng.Next(2) == 0) h |= 0x8000;
                    BitConverter.TryWriteBytes(w.AsSpan(r * rowBytes + b * 18, 2), h);
                }
            var x = new float[k];
            for (int i = 0; i < k; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 + 1);
            var xq = new sbyte[k]; var xs = new float[blocks];
            QuantIntDot.QuantizeActivation(x, xq, xs);
            var dx = new float[nbp]; var off = new float[nbp]; var xr = new sbyte[QuantIntDot.RegroupedBytes(blocks)];
            var got = new float[4];
            fixed (byte* pw = w) fixed (sbyte* pq = xq) fixed (float* ps = xs) fixed (float* pdx = dx) fixed (float* po = off)
            fixed (sbyte* pxr = xr) fixed (float* pg = got)
            {
                QuantIntDot.PrepareAvx512(pq, ps, blocks, pdx, po);
                QuantIntDot.RegroupActivation(pq, blocks, pxr);
                // (0, -1): the four-row kernel without VBMI (per-row widened scales), which machines without it use.
                foreach (var (first, readable) in new[] { (0, 0), (1, 0), (0, 6 * rowBytes), (1, 5 * rowBytes), (1, -1) })
                {
                    if (readable >= 0) QuantIntDot.DotQ4x4Vbmi(pw + first * rowBytes, rowBytes, blocks, pxr, pdx, po, pg, readable);
                    else
                    {
                        var dw = new float[4 * nbp];
                        fixed (float* pd = dw)
                        {
                            for (int r = 0; r < 4; r++) QuantIntDot.RowScales(pw + (first + r) * rowBytes, blocks, 18, pd + r * nbp);
                            QuantIntDot.DotQ4x4Avx512(pw + first * rowBytes, rowBytes, blocks, pq, pdx, po, pd, nbp, pg);
                        }
                    }
                    for (int r = 0; r < 4; r++)
                    {
                        byte* row = pw + (first + r) * rowBytes;
                        float want = QuantIntDot.Dot(QuantFormat.Q4_0, row, k, pq, ps, IntDotPath.Scalar);
                        // Magnitude for the float-order tolerance: Σ_b |d_w·d_x|·Σ|(c−8)·x|.
                        double mag = 0;
                        for (int b = 0; b < blocks; b++)
                        {
                            double dw = Math.Abs((double)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(w, (first + r) * rowBytes + b * 18)));
                            long s = 0;
                            for (int j = 0; j < 16; j++)
                            {
                                int c = row[b * 18 + 2 + j];
                                s += Math.Abs(((c & 15) - 8) * xq[b * 32 + j]) + Math.Abs(((c >> 4) - 8) * xq[b * 32 + 16 + j]);
                            }
                            mag += dw * xs[b] * s;
                        }
                        Assert.True(Math.Abs(got[r] - want) <= 1e-5 * mag + 1e-30, $"blocks {blocks}, row {first + r}, readable {readable}: {got[r]} vs scalar {want} (magnitude {mag})");
                    }
                }
            }
        }
    }

    [Fact]
    public void PublicEntriesUseTheDecodePathForSmallMAndAgreeWithThePackedPath()
    {
        using var w = Weight(QuantFormat.NF4, 21, 128, 9);
        var x = Uniform(3 * 128, 10);
        var viaGemv = new float[3 * 21];
        var packed = new float[3 * 21];
        QuantGemm.ABt(x, w, viaGemv, 3);
        QuantGemm.Compute(GemmLayout.ABt, x, w, packed, 3, false, Simd.Width, 1, null, decode: false);
        for (int i = 0; i < packed.Length; i++) Assert.Equal(packed[i], viaGemv[i], 1e-4f);
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        using var w = Weight(QuantFormat.Q8_0, 5, 64, 11);
        Assert.Throws<ShapeException>(() => QuantGemm.ABt(new float[2 * 63], w, new float[10], 2));
        Assert.Throws<ShapeException>(() => QuantGemm.ABt(new float[2 * 64], w, new float[9], 2));
        Assert.Throws<ShapeException>(() => QuantGemm.AB(new float[2 * 4], w, new float[128], 2));
        Assert.Throws<ShapeException>(() => QuantGemm.AB(new float[2 * 5], w, new float[127], 2));
        Assert.Throws<ShapeException>(() => QuantGemm.ABt(new float[2 * 64], w, new float[10], -1));
    }
}
