using System.Buffers.Binary;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// Scalar reference quantize/dequantize of GGML's Q8_0 and Q4_0 blocks, kept forever as the
/// definition that faster versions are tested against. Rounding follows llama.cpp's reference
/// functions so that bytes match what llama.cpp writes.
/// </summary>
/// <remarks>
/// Q8_0 block (34 bytes, 32 values): f16 d, then 32 int8 q; value = q·d. Quantize: d = amax/127,
/// q = round(x·(1/d)) with ties away from zero.
/// Q4_0 block (18 bytes, 32 values): f16 d, then 16 bytes; byte j holds element j in its low nibble
/// and element j+16 in its high nibble; value = (q − 8)·d. Quantize: m = the value of largest
/// magnitude (signed), d = m / −8, q = min(15, trunc(x·(1/d) + 8.5)).
/// The scale is rounded to f16 for storage but the unrounded 1/d quantizes, as llama.cpp does.
/// </remarks>
public static class GgufQuant
{
    public const int BlockSize = 32;
    public const int Q8_0BlockBytes = 34;
    public const int Q4_0BlockBytes = 18;

    public static void QuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> dst)
    {
        int blocks = CheckQuantize("QuantizeQ8_0", x.Length, dst.Length, Q8_0BlockBytes);
        for (int b = 0; b < blocks; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            var o = dst.Slice(b * Q8_0BlockBytes, Q8_0BlockBytes);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
            for (int j = 0; j < BlockSize; j++)
                o[2 + j] = (byte)(sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    public static void DequantizeQ8_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = CheckDequantize("DequantizeQ8_0", src.Length, dst.Length, Q8_0BlockBytes);
        for (int b = 0; b < blocks; b++)
        {
            var s = src.Slice(b * Q8_0BlockBytes, Q8_0BlockBytes);
            float d = (float)BinaryPrimitives.ReadHalfLittleEndian(s);
            var o = dst.Slice(b * BlockSize, BlockSize);
            for (int j = 0; j < BlockSize; j++) o[j] = (sbyte)s[2 + j] * d;
        }
    }

    public static void QuantizeQ4_0(ReadOnlySpan<float> x, Span<byte> dst)
    {
        int blocks = CheckQuantize("QuantizeQ4_0", x.Length, dst.Length, Q4_0BlockBytes);
        for (int b = 0; b < blocks; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            var o = dst.Slice(b * Q4_0BlockBytes, Q4_0BlockBytes);
            float amax = 0, max = 0;
            foreach (float f in v)
            {
                if (amax < MathF.Abs(f)) { amax = MathF.Abs(f); max = f; }
            }
            float d = max / -8f;
            float id = d != 0 ? 1f / d : 0f;
            BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int lo = Math.Min(15, (int)(sbyte)(v[j] * id + 8.5f));
                int hi = Math.Min(15, (int)(sbyte)(v[j + BlockSize / 2] * id + 8.5f));
                o[2 + j] = (byte)(lo | (hi << 4));
            }
        }
    }

    public static void DequantizeQ4_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int blocks = CheckDequantize("DequantizeQ4_0", src.Length, dst.Length, Q4_0BlockBytes);
        for (int b = 0; b < blocks; b++)
        {
            var s = src.Slice(b * Q4_0BlockBytes, Q4_0BlockBytes);
            float d = (float)BinaryPrimitives.ReadHalfLittleEndian(s);
            var o = dst.Slice(b * BlockSize, BlockSize);
            for (int j = 0; j < BlockSize / 2; j++)
            {
                o[j] = ((s[2 + j] & 0x0F) - 8) * d;
                o[j + BlockSize / 2] = ((s[2 + j] >> 4) - 8) * d;
            }
        }
    }

    /// <summary>Quantizes <paramref name="x"/> to <paramref name="type"/> (Q8_0 or Q4_0).</summary>
    public static void Quantize(DType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        switch (type)
        {
            case DType.Q8_0: QuantizeQ8_0(x, dst); break;
            case DType.Q4_0: QuantizeQ4_0(x, dst); break;
            default: throw new NotSupportedException($"GgufQuant: {type} is not a block-quantized type (Q8_0, Q4_0)");
        }
    }

    /// <summary>Dequantizes <paramref name="src"/> of <paramref name="type"/> (Q8_0 or Q4_0) to floats.</summary>
    public static void Dequantize(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case DType.Q8_0: DequantizeQ8_0(src, dst); break;
            case DType.Q4_0: DequantizeQ4_0(src, dst); break;
            default: throw new NotSupportedException($"GgufQuant: {type} is not a block-quantized type (Q8_0, Q4_0)");
        }
    }

    /// <summary>A new owning tensor of <paramref name="type"/> with the same shape; the source may be F32, F16, BF16 or F64.</summary>
    public static Tensor Quantize(Tensor source, DType type)
    {
        if (type is not (DType.Q8_0 or DType.Q4_0))
            throw new NotSupportedException($"GgufQuant.Quantize: {type} is not Q8_0 or Q4_0");
        if (source.Rank == 0 || source.Dim(-1) % BlockSize != 0)
            throw new ShapeException($"GgufQuant.Quantize: tensor '{source.Name}' {source.ShapeString}: the last dimension must be a multiple of {BlockSize}");
        float[] x = source.ToFloatArray();
        var t = Tensor.Zeros(type, source.Shape.ToArray(), source.Name);
        unsafe { Quantize(type, x, new Span<byte>(t.Pointer, checked((int)t.ByteLength))); }
        return t;
    }

    /// <summary>A new owning F32 tensor; Q8_0 and Q4_0 are dequantized, float types widened.</summary>
    public static Tensor ToFloat32(Tensor source)
    {
        if (!source.DType.IsBlockQuantized()) return source.To(DType.F32);
        var t = Tensor.Zeros(DType.F32, source.Shape.ToArray(), source.Name);
        Dequantize(source.DType, source.Bytes, t.Span<float>());
        return t;
    }

    private static int CheckQuantize(string op, int n, int dstBytes, int blockBytes)
    {
        if (n % BlockSize != 0) throw new ShapeException($"{op}: {n} values is not a multiple of the block size {BlockSize}");
        int blocks = n / BlockSize;
        if (dstBytes < (long)blocks * blockBytes) throw new ShapeException($"{op}: destination holds {dstBytes} bytes, {blocks} blocks need {(long)blocks * blockBytes}");
        return blocks;
    }

    private static int CheckDequantize(string op, int srcBytes, int n, int blockBytes)
    {
        if (n % BlockSize != 0) throw new ShapeException($"{op}: {n} values is not a multiple of the block size {BlockSize}");
        int blocks = n / BlockSize;
        if (srcBytes < (long)blocks * blockBytes) throw new ShapeException($"{op}: source holds {srcBytes} bytes, {blocks} blocks need {(long)blocks * blockBytes}");
        return blocks;
    }
}
