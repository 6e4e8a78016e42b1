using System.Buffers.Binary;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public class GgufQuantTests
{
    [Fact]
    public void Q8_0HandBlock()
    {
        float[] x = Enumerable.Range(0, 32).Select(j => (float)(j - 16)).ToArray();
        var b = new byte[34];
        GgufQuant.QuantizeQ8_0(x, b);
        Assert.Equal((Half)(16f / 127f), BinaryPrimitives.ReadHalfLittleEndian(b));
        Assert.Equal(-127, (sbyte)b[2]);      // -16 · 127/16
        Assert.Equal(0, (sbyte)b[2 + 16]);
        Assert.Equal(8, (sbyte)b[2 + 17]);    // 7.9375 rounds to 8
        Assert.Equal(-8, (sbyte)b[2 + 15]);
        Assert.Equal(119, (sbyte)b[2 + 31]);  // 15 · 7.9375 = 119.06
        var y = new float[32];
        GgufQuant.DequantizeQ8_0(b, y);
        float d = (float)(Half)(16f / 127f);
        for (int j = 0; j < 32; j++) Assert.Equal((sbyte)b[2 + j] * d, y[j]);
    }

    [Fact]
    public void Q8_0TiesRoundAwayFromZero()
    {
        var x = new float[32];
        x[0] = 127; x[1] = 0.5f; x[2] = -0.5f; x[3] = 1.5f; // d = 1 exactly
        var b = new byte[34];
        GgufQuant.QuantizeQ8_0(x, b);
        Assert.Equal([127, 1, -1, 2], b[2..6].Select(v => (int)(sbyte)v));
    }

    [Fact]
    public void Q4_0HandBlocks()
    {
        // Largest magnitude -8 → d = 1; low half -8..7 → q = 0..15; high half all 7 → q = 15.
        float[] x = [.. Enumerable.Range(0, 16).Select(j => (float)(j - 8)), .. Enumerable.Repeat(7f, 16)];
        var b = new byte[18];
        GgufQuant.QuantizeQ4_0(x, b);
        Assert.Equal((Half)1, BinaryPrimitives.ReadHalfLittleEndian(b));
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | 0xF0), b[2 + j]);
        var y = new float[32];
        GgufQuant.DequantizeQ4_0(b, y);
        Assert.Equal(x, y);

        // Positive maximum: d = -1, so +8 maps to q = 0 and back to +8; -7 maps to 15 → -7.
        float[] p = new float[32];
        p[0] = 8; p[1] = -7; p[16] = 3;
        GgufQuant.QuantizeQ4_0(p, b);
        Assert.Equal((Half)(-1), BinaryPrimitives.ReadHalfLittleEndian(b));
        Assert.Equal(0, b[2] & 0xF);
        Assert.Equal(15, b[3] & 0xF);
        Assert.Equal(5, b[2] >> 4); // element 16 = 3 → trunc(-3 + 8.5) = 5
        GgufQuant.DequantizeQ4_0(b, y);
        Assert.Equal(8f, y[0]);
        Assert.Equal(-7f, y[1]);
        Assert.Equal(3f, y[16]);
        Assert.Equal(0f, y[2]);
    }

    [Fact]
    public void ZeroBlocksStayZero()
    {
        var x = new float[64];
        foreach (var t in new[] { DType.Q8_0, DType.Q4_0 })
        {
            var b = new byte[2 * t.BlockBytes()];
            GgufQuant.Quantize(t, x, b);
            var y = new float[64];
            y.AsSpan().Fill(1);
            GgufQuant.Dequantize(t, b, y);
            Assert.All(y, v => Assert.Equal(0f, v));
        }
    }

    [Theory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    public void RandomBlocksStayWithinTheFormatErrorBudget(DType type)
    {
        var rng = new Rng(42);
        const int blocks = 64;
        var x = new float[blocks * 32];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (1 + i % 7);
        using var t = Tensor.From<float>(x, [blocks, 32], "w");
        using var q = GgufQuant.Quantize(t, type);
        Assert.Equal(type, q.DType);
        Assert.Equal(blocks * type.BlockBytes(), q.ByteLength);
        using var back = GgufQuant.ToFloat32(q);
        float[] y = back.ToFloatArray();
        for (int b = 0; b < blocks; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[b * 32 + j]));
            // Q8_0: half a step of amax/127 (+ f16 scale rounding); Q4_0: one step of amax/8 at the clamped end.
            float budget = type == DType.Q8_0 ? amax / 127 * 0.5f + amax * 2e-3f : amax / 8 * 1.01f;
            for (int j = 0; j < 32; j++) Assert.True(Math.Abs(x[b * 32 + j] - y[b * 32 + j]) <= budget, $"block {b} elem {j}: {x[b * 32 + j]} vs {y[b * 32 + j]}");
        }
    }

    [Fact]
    public void LengthsAreChecked()
    {
        Assert.Throws<ShapeException>(() => GgufQuant.QuantizeQ8_0(new float[31], new byte[34]));
        Assert.Throws<ShapeException>(() => GgufQuant.QuantizeQ4_0(new float[32], new byte[17]));
        Assert.Throws<ShapeException>(() => GgufQuant.DequantizeQ8_0(new byte[33], new float[32]));
        Assert.Throws<ShapeException>(() => GgufQuant.DequantizeQ4_0(new byte[18], new float[33]));
        using var t = Tensor.Zeros(DType.F32, [2, 48], "w");
        Assert.Contains("'w'", Assert.Throws<ShapeException>(() => GgufQuant.Quantize(t, DType.Q8_0)).Message);
        Assert.Throws<NotSupportedException>(() => GgufQuant.Quantize(t, DType.BF16));
    }

    [Fact]
    public void BlockDTypesDescribeTheirBlocks()
    {
        Assert.Equal(32, DType.Q8_0.BlockSize());
        Assert.Equal(34, DType.Q8_0.BlockBytes());
        Assert.Equal(32, DType.Q4_0.BlockSize());
        Assert.Equal(18, DType.Q4_0.BlockBytes());
        Assert.Equal(34 * 3, DType.Q8_0.ByteSize(96));
        Assert.Throws<ArgumentException>(() => DType.Q4_0.ByteSize(33));
        Assert.True(DType.Q4_0.IsBlockQuantized());
        Assert.False(DType.F32.IsBlockQuantized());
    }
}
