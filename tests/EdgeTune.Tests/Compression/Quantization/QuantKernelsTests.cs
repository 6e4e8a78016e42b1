using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tests.Compression.Quantization;

public class QuantKernelsTests
{
    public static TheoryData<QuantFormat, SimdWidth> FormatsAndWidths()
    {
        var data = new TheoryData<QuantFormat, SimdWidth>();
        foreach (var f in Enum.GetValues<QuantFormat>())
            foreach (var w in new[] { SimdWidth.Scalar, SimdWidth.V128, SimdWidth.V256, SimdWidth.V512 })
                data.Add(f, w);
        return data;
    }

    /// <summary>Row lengths: every multiple of the block up to 9 blocks (Int8: 1..257).</summary>
    private static IEnumerable<int> Lengths(QuantFormat f) =>
        f == QuantFormat.Int8 ? Enumerable.Range(1, 257) : Enumerable.Range(1, 9).Select(b => b * f.Info().BlockSize);

    [Theory, MemberData(nameof(FormatsAndWidths))]
    public void DequantizeRowMatchesTheReferenceExactly(QuantFormat format, SimdWidth width)
    {
        var rng = new Rng(21);
        foreach (int cols in Lengths(format))
        {
            var w = new float[cols];
            rng.FillGaussian(w, 0, 0.5f);
            var bytes = new byte[format.RowBytes(cols)];
            QuantReference.QuantizeRow(format, w, bytes);
            var want = new float[cols];
            QuantReference.DequantizeRow(format, bytes, want);
            var got = new float[cols];
            QuantKernels.DequantizeRow(format, bytes, got, width);
            Assert.Equal(want, got);
        }
    }

    [Theory, MemberData(nameof(FormatsAndWidths))]
    public void FusedDotMatchesTheReference(QuantFormat format, SimdWidth width)
    {
        var rng = new Rng(22);
        foreach (int cols in Lengths(format))
        {
            var w = new float[cols];
            var x = new float[cols];
            rng.FillGaussian(w, 0, 0.5f);
            rng.FillUniform(x, -1, 1);
            var bytes = new byte[format.RowBytes(cols)];
            QuantReference.QuantizeRow(format, w, bytes);
            double want = QuantReference.Dot(format, bytes, x);
            var d = new float[cols];
            QuantReference.DequantizeRow(format, bytes, d);
            double mag = 0;
            for (int j = 0; j < cols; j++) mag += Math.Abs((double)d[j] * x[j]);
            float got = QuantKernels.Dot(format, bytes, x, width);
            Assert.True(Math.Abs(got - want) <= 1e-6 * mag + 1e-30, $"{format} {width} cols={cols}: {got} vs {want}");
        }
    }

    [Fact]
    public unsafe void HalfScalesWidenExactlyForEveryBitPattern()
    {
        for (int bits = 0; bits < 65536; bits++)
        {
            ushort h = (ushort)bits;
            float want = (float)BitConverter.UInt16BitsToHalf(h);
            float got = EdgeTune.Tensors.Quantized.Internal.QuantWiden.Half((byte*)&h);
            if (float.IsNaN(want)) Assert.True(float.IsNaN(got), $"0x{bits:X4}");
            else Assert.Equal(BitConverter.SingleToUInt32Bits(want), BitConverter.SingleToUInt32Bits(got));
        }
    }

    [Fact]
    public void BadLengthsAreRejected()
    {
        Assert.Throws<ShapeException>(() => QuantKernels.DequantizeRow(QuantFormat.Q8_0, new byte[33], new float[32]));
        Assert.Throws<ShapeException>(() => QuantKernels.Dot(QuantFormat.NF4, new byte[40], new float[64]));
        Assert.Throws<ArgumentException>(() => QuantKernels.Dot(QuantFormat.Q4_0, new byte[18], new float[31]));
    }
}
