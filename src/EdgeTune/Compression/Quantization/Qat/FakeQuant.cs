using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Numerics;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Quantization.Qat;

/// <summary>
/// Fake quantization: a value is replaced by what a quantized copy of it dequantizes to,
/// ŵ = dequant(quant(w)), while staying a float. Weights round-trip row by row in a
/// <see cref="QuantFormat"/> (exactly the bytes <see cref="QuantReference.QuantizeRow"/> writes, read back by
/// <see cref="QuantKernels.DequantizeRow(QuantFormat, ReadOnlySpan{byte}, Span{float})"/>), so a weight trained under fake quantization quantizes later to
/// precisely the values training saw. Activations round-trip per row (per token) in symmetric int8
/// (scale amax/127, the <see cref="QuantFormat.Int8"/> row).
/// </summary>
public static class FakeQuant
{
    /// <summary>Whether a matrix whose rows hold <paramref name="cols"/> elements can be held in <paramref name="format"/>.</summary>
    public static bool Supports(QuantFormat format, int cols) => cols > 0 && cols % format.Info().BlockSize == 0;

    /// <summary>dst[rows, cols] = dequant(quant(src)) row by row in <paramref name="format"/>; src and dst may be the same span.</summary>
    /// <exception cref="ShapeException">Lengths differ from rows×cols or cols is not a multiple of the format's block.</exception>
    public static void Weights(QuantFormat format, ReadOnlySpan<float> src, Span<float> dst, int rows, int cols)
    {
        Check(format, src.Length, dst.Length, rows, cols, "FakeQuant.Weights");
        if (rows == 0) return;
        var bytes = new byte[format.RowBytes(cols)];
        for (int r = 0; r < rows; r++)
        {
            QuantReference.QuantizeRow(format, src.Slice(r * cols, cols), bytes);
            QuantKernels.DequantizeRow(format, bytes, dst.Slice(r * cols, cols));
        }
    }

    /// <summary>The same round trip for any float type (F64 for gradient checks): each row is narrowed to
    /// float, round-tripped, and widened back (exact: dequantized values are floats).</summary>
    public static void Weights<T>(QuantFormat format, ReadOnlySpan<T> src, Span<T> dst, int rows, int cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Check(format, src.Length, dst.Length, rows, cols, "FakeQuant.Weights");
        if (rows == 0) return;
        var row = new float[cols];
        var bytes = new byte[format.RowBytes(cols)];
        for (int r = 0; r < rows; r++)
        {
            var s = src.Slice(r * cols, cols);
            for (int j = 0; j < cols; j++) row[j] = float.CreateTruncating(s[j]);
            QuantReference.QuantizeRow(format, row, bytes);
            QuantKernels.DequantizeRow(format, bytes, row);
            var d = dst.Slice(r * cols, cols);
            for (int j = 0; j < cols; j++) d[j] = T.CreateTruncating(row[j]);
        }
    }

    /// <summary>Per-row symmetric int8 round trip of activations x[rows, cols]: s = max|x_row|/127,
    /// x̂ = round(x/s)·s (ties away from zero); a row of zeros stays zero. src and dst may be the same span.</summary>
    public static void Activations<T>(ReadOnlySpan<T> src, Span<T> dst, int rows, int cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (rows < 0 || cols < 0 || src.Length != (long)rows * cols || dst.Length != src.Length)
            throw new ShapeException($"FakeQuant.Activations: src {src.Length} and dst {dst.Length} elements for [{rows}, {cols}]");
        for (int r = 0; r < rows; r++)
        {
            var s = src.Slice(r * cols, cols);
            var d = dst.Slice(r * cols, cols);
            // in float, as the Int8 row format computes it
            float amax = 0;
            foreach (T v in s) amax = MathF.Max(amax, MathF.Abs(float.CreateTruncating(v)));
            float scale = amax / 127f, inv = scale != 0 ? 1f / scale : 0f;
            for (int j = 0; j < cols; j++)
            {
                float q = MathF.Round(float.CreateTruncating(s[j]) * inv, MidpointRounding.AwayFromZero);
                d[j] = T.CreateTruncating(q * scale);
            }
        }
    }

    private static void Check(QuantFormat format, int srcLength, int dstLength, int rows, int cols, string op)
    {
        if (rows < 0 || cols <= 0 || srcLength != (long)rows * cols || dstLength != srcLength)
            throw new ShapeException($"{op}: src {srcLength} and dst {dstLength} elements for [{rows}, {cols}]");
        if (!Supports(format, cols))
            throw new ShapeException($"{op}: {format.Info().Name} needs rows whose length is a multiple of {format.Info().BlockSize}; got {cols}");
    }
}
