using System.Buffers.Binary;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// Scalar reference quantize / dequantize / dot of one row in each <see cref="QuantFormat"/>, kept
/// forever as the definition the fast kernels (<see cref="QuantKernels"/>) are tested against.
/// Q8_0 and Q4_0 are GGML's blocks (<see cref="GgufQuant"/>, bit-exact with llama.cpp).
/// Int8 row: f32 scale s = amax/127, then Cols int8 q = round(w/s) (ties away from zero); w ≈ q·s.
/// </summary>
public static partial class QuantReference
{
    public static void QuantizeRow(QuantFormat format, ReadOnlySpan<float> row, Span<byte> dst)
    {
        Check(format, row.Length, dst.Length, "QuantizeRow");
        switch (format)
        {
            case QuantFormat.Q8_0: GgufQuant.QuantizeQ8_0(row, dst); break;
            case QuantFormat.Q4_0: GgufQuant.QuantizeQ4_0(row, dst); break;
            case QuantFormat.NF4: QuantizeNf4Row(row, dst); break;
            case QuantFormat.Int8:
                {
                    float amax = 0;
                    foreach (float f in row) amax = MathF.Max(amax, MathF.Abs(f));
                    float s = amax / 127f, inv = s != 0 ? 1f / s : 0f;
                    BinaryPrimitives.WriteSingleLittleEndian(dst, s);
                    for (int j = 0; j < row.Length; j++) dst[4 + j] = (byte)(sbyte)MathF.Round(row[j] * inv, MidpointRounding.AwayFromZero);
                    break;
                }
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "unknown format");
        }
    }

    public static void DequantizeRow(QuantFormat format, ReadOnlySpan<byte> src, Span<float> row)
    {
        Check(format, row.Length, src.Length, "DequantizeRow");
        switch (format)
        {
            case QuantFormat.Q8_0: GgufQuant.DequantizeQ8_0(src, row); break;
            case QuantFormat.Q4_0: GgufQuant.DequantizeQ4_0(src, row); break;
            case QuantFormat.NF4: DequantizeNf4Row(src, row); break;
            case QuantFormat.Int8:
                {
                    float s = BinaryPrimitives.ReadSingleLittleEndian(src);
                    for (int j = 0; j < row.Length; j++) row[j] = (sbyte)src[4 + j] * s;
                    break;
                }
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "unknown format");
        }
    }

    /// <summary>Σ dequant(row)[j]·x[j] in double, the definition of the dot product.</summary>
    public static double Dot(QuantFormat format, ReadOnlySpan<byte> src, ReadOnlySpan<float> x)
    {
        var w = new float[x.Length];
        DequantizeRow(format, src, w);
        double s = 0;
        for (int j = 0; j < w.Length; j++) s += (double)w[j] * x[j];
        return s;
    }

    internal static void Check(QuantFormat format, int cols, int bytes, string op)
    {
        int need = format.RowBytes(cols);
        if (bytes != need)
            throw new ShapeException($"{(op.Contains('.') ? op : "QuantReference." + op)}: {format.Info().Name} row of {cols} elements takes {need} bytes, got {bytes}");
    }
}
