namespace EdgeTune.Compression.Quantization;

public static partial class QuantReference
{
    // NF4 with double quantization: to be written (formats work).
    internal static void QuantizeNf4Row(ReadOnlySpan<float> row, Span<byte> dst) =>
        throw new NotImplementedException("NF4 quantization is not written yet");

    internal static void DequantizeNf4Row(ReadOnlySpan<byte> src, Span<float> row) =>
        throw new NotImplementedException("NF4 dequantization is not written yet");
}

public static partial class QuantFormats
{
    /// <summary>NF4 row: Cols/2 bytes of codes, one byte per 64-block scale code, and 8 bytes
    /// (f32 offset, f32 scale) per group of 256 blocks.</summary>
    internal static int Nf4RowBytes(int cols)
    {
        int blocks = cols / 64;
        return cols / 2 + blocks + 8 * ((blocks + 255) / 256);
    }
}
