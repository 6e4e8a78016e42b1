namespace EdgeTune.Compression.Quantization;

/// <summary>The fast per-row kernels behind <see cref="QuantizedMatrix"/> and <see cref="QuantGemm"/>.
/// (Scaffold: delegates to <see cref="QuantReference"/> until the SIMD paths land.)</summary>
public static class QuantKernels
{
    public static void DequantizeRow(QuantFormat format, ReadOnlySpan<byte> src, Span<float> row) =>
        QuantReference.DequantizeRow(format, src, row);
}
