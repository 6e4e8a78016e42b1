using EdgeTune.Tensors.Quantized.Internal;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized;

/// <summary>The fast per-row kernels behind <see cref="QuantizedMatrix"/> and <see cref="QuantGemm"/>:
/// dequantize a row, and the fused dequantize·dot, at the machine's vector width
/// (<see cref="Simd.Width"/>; <see cref="SimdWidth.Scalar"/> runs <see cref="QuantReference"/>).</summary>
public static unsafe class QuantKernels
{
    /// <summary>row[0..Cols) = dequant(src), src one row's bytes.</summary>
    public static void DequantizeRow(QuantFormat format, ReadOnlySpan<byte> src, Span<float> row) =>
        DequantizeRow(format, src, row, Simd.Width);

    /// <summary>Σ dequant(src)[j]·x[j] (float accumulation, blockwise).</summary>
    public static float Dot(QuantFormat format, ReadOnlySpan<byte> src, ReadOnlySpan<float> x) =>
        Dot(format, src, x, Simd.Width);

    internal static void DequantizeRow(QuantFormat format, ReadOnlySpan<byte> src, Span<float> row, SimdWidth width)
    {
        QuantReference.Check(format, row.Length, src.Length, "QuantKernels.DequantizeRow");
        int cols = row.Length, nb = cols / format.Info().BlockSize;
        fixed (byte* s = src)
        fixed (float* d = row)
        {
            switch (width)
            {
                case SimdWidth.V512: QuantRowKernels.DequantizeBlocks<V512>(format, s, cols, 0, nb, d); break;
                case SimdWidth.V256: QuantRowKernels.DequantizeBlocks<V256>(format, s, cols, 0, nb, d); break;
                case SimdWidth.V128: QuantRowKernels.DequantizeBlocks<V128>(format, s, cols, 0, nb, d); break;
                default: QuantReference.DequantizeRow(format, src, row); break;
            }
        }
    }

    internal static float Dot(QuantFormat format, ReadOnlySpan<byte> src, ReadOnlySpan<float> x, SimdWidth width)
    {
        QuantReference.Check(format, x.Length, src.Length, "QuantKernels.Dot");
        fixed (byte* s = src)
        fixed (float* px = x)
        {
            return width switch
            {
                SimdWidth.V512 => QuantRowKernels.Dot<V512>(format, s, x.Length, px),
                SimdWidth.V256 => QuantRowKernels.Dot<V256>(format, s, x.Length, px),
                SimdWidth.V128 => QuantRowKernels.Dot<V128>(format, s, x.Length, px),
                _ => (float)QuantReference.Dot(format, src, x),
            };
        }
    }
}
