namespace EdgeTune.Tensors.Quantized;

/// <summary>Weight quantization formats. Every format quantizes a matrix row by row, in blocks along
/// the row, so each row is self-contained: any row (or run of rows) can be dequantized alone.</summary>
public enum QuantFormat
{
    /// <summary>GGML Q8_0: blocks of 32, f16 scale + 32 int8 (34 bytes); bit-exact with llama.cpp.</summary>
    Q8_0,
    /// <summary>GGML Q4_0: blocks of 32, f16 scale + 16 bytes of nibbles (18 bytes); bit-exact with llama.cpp.</summary>
    Q4_0,
    /// <summary>QLoRA's NormalFloat-4 with double quantization: blocks of 64 over the NF4 code book,
    /// block absmax scales themselves quantized to 8 bits with a second-level scale per row group.</summary>
    NF4,
    /// <summary>Symmetric int8 per output channel (one f32 scale per row).</summary>
    Int8,
}

/// <summary>One row of the formats table.</summary>
/// <param name="BlockSize">Elements per block; a row's length must be a multiple of it.</param>
/// <param name="BlockBytes">Bytes per block, not counting per-row extras.</param>
/// <param name="RelativeRmsErrorBudget">Largest allowed ‖dequant(quant(w)) − w‖₂ / ‖w‖₂ on Gaussian
/// weights; tests enforce it. Measured on N(0, 0.02²) rows of 1536 and 19200 elements: q8_0 0.0054,
/// q4_0 0.086, nf4 0.092, int8 0.0082 (1536) to 0.0103 (19200, a larger row absmax); budgets ≈ 1.2×.</param>
public sealed record QuantFormatInfo(QuantFormat Format, string Name, int BlockSize, int BlockBytes, double RelativeRmsErrorBudget);

/// <summary>The formats table: block size, bytes per block, bytes per row and error budget.</summary>
public static partial class QuantFormats
{
    public static IReadOnlyList<QuantFormatInfo> All { get; } =
    [
        new(QuantFormat.Q8_0, "q8_0", 32, 34, 0.0065),
        new(QuantFormat.Q4_0, "q4_0", 32, 18, 0.104),
        new(QuantFormat.NF4, "nf4", 64, 32, 0.11),
        new(QuantFormat.Int8, "int8", 1, 1, 0.012),
    ];

    public static QuantFormatInfo Info(this QuantFormat format) => All[(int)format];

    /// <summary>Parses a format name (q8_0, q4_0, nf4, int8; case-insensitive).</summary>
    public static QuantFormat Parse(string name) =>
        All.FirstOrDefault(i => string.Equals(i.Name, name, StringComparison.OrdinalIgnoreCase))?.Format
        ?? throw new ArgumentException($"unknown quantization format '{name}'; expected one of {string.Join(", ", All.Select(i => i.Name))}");

    /// <summary>Bytes one row of <paramref name="cols"/> elements takes, including per-row extras
    /// (NF4: the quantized block scales and the second-level scales; Int8: the f32 row scale).</summary>
    public static int RowBytes(this QuantFormat format, int cols)
    {
        var info = format.Info();
        if (cols <= 0 || cols % info.BlockSize != 0)
            throw new ArgumentException($"{info.Name}: a row of {cols} elements is not a positive multiple of the block size {info.BlockSize}");
        return format switch
        {
            QuantFormat.Int8 => 4 + cols,
            QuantFormat.NF4 => Nf4RowBytes(cols),
            _ => cols / info.BlockSize * info.BlockBytes,
        };
    }

    /// <summary>Average bits per weight of a row of <paramref name="cols"/> elements.</summary>
    public static double BitsPerWeight(this QuantFormat format, int cols) => 8.0 * format.RowBytes(cols) / cols;
}
