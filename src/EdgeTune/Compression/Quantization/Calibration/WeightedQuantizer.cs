using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Buffers.Binary;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Quantization.Calibration;

/// <summary>
/// Calibration-aware rounding: quantizes a weight row into the SAME bytes layout as
/// <see cref="QuantReference.QuantizeRow"/> (so every loader reads it), but chooses each block's scale to
/// minimise the importance-weighted error Σ_j a_j·(w_j − ŵ_j)² instead of taking it from the block's
/// absolute maximum. With a_j the mean squared activation of input channel j (<see cref="ActivationStats"/>),
/// that sum is the expected squared error the block adds to the layer's output, E[(x·(w − ŵ))²], up to the
/// cross terms between channels.
/// </summary>
/// <remarks>
/// <para>Search per block: the plain (llama.cpp) encoding is always a candidate, so the weighted error never
/// exceeds plain rounding's. Q8_0/Q4_0/Int8: scales d = ±amax/m for m over a grid around the plain divisor
/// (both signs for Q4_0's asymmetric −8..7 code range), each with nearest rounding, then one weighted
/// least-squares refit d = Σ a·w·q / Σ a·q² and re-rounding; the scale is rounded to its stored precision
/// (f16, or f32 for Int8) before the error is measured. Codes stay nearest-rounded for the scale chosen.</para>
/// <para>This is opt-in and separate from <see cref="QuantReference"/>: plain Q8_0/Q4_0 stay bit-exact with llama.cpp.</para>
/// </remarks>
public static partial class WeightedQuantizer
{
    /// <summary>Formats this quantizer handles.</summary>
    public static bool Supports(QuantFormat format) => format is QuantFormat.Q8_0 or QuantFormat.Q4_0 or QuantFormat.Int8 or QuantFormat.NF4;

    /// <summary>Quantizes one row with per-element importance (≥ 0, same length; all zero means uniform).</summary>
    /// <exception cref="ShapeException">Lengths do not match the format.</exception>
    public static void QuantizeRow(QuantFormat format, ReadOnlySpan<float> row, ReadOnlySpan<float> importance, Span<byte> dst)
    {
        QuantReference.Check(format, row.Length, dst.Length, "QuantizeWeighted");
        if (importance.Length != row.Length)
            throw new ShapeException($"WeightedQuantizer.QuantizeRow: importance has {importance.Length} elements, the row {row.Length}");
        var a = Normalize(importance);
        switch (format)
        {
            case QuantFormat.Q4_0: IntBlocks(row, a, dst, block: 32, qmin: -8, qmax: 7, f16: true, plain: GgufQuantQ4); break;
            case QuantFormat.Q8_0: IntBlocks(row, a, dst, block: 32, qmin: -127, qmax: 127, f16: true, plain: GgufQuantQ8); break;
            case QuantFormat.Int8: IntBlocks(row, a, dst, block: row.Length, qmin: -127, qmax: 127, f16: false, plain: PlainInt8); break;
            case QuantFormat.NF4: Nf4Row(row, a, dst); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "unsupported format");
        }
    }

    /// <summary>Quantizes a matrix [rows, cols] (an F32/F16/BF16 tensor) with one importance per column.</summary>
    public static QuantizedMatrix Quantize(Tensor weight, ReadOnlySpan<float> importance, QuantFormat format)
    {
        if (weight.Rank != 2) throw new ShapeException($"WeightedQuantizer.Quantize: '{weight.Name}' must be 2-D, got {weight.ShapeString}");
        int rows = weight.Dim(0), cols = weight.Dim(1);
        if (importance.Length != cols)
            throw new ShapeException($"WeightedQuantizer.Quantize: '{weight.Name}' {weight.ShapeString} needs {cols} importances, got {importance.Length}");
        using var wide = weight.DType == DType.F32 ? null : weight.To(DType.F32);
        var w = (wide ?? weight).ReadOnlySpan<float>();
        int rowBytes = format.RowBytes(cols);
        var data = Tensor.Zeros(DType.U8, [checked(rows * rowBytes)], weight.Name);
        var bytes = data.Span<byte>();
        for (int r = 0; r < rows; r++) QuantizeRow(format, w.Slice(r * cols, cols), importance, bytes.Slice(r * rowBytes, rowBytes));
        return QuantizedMatrix.FromStorage(format, rows, cols, data, weight.Name);
    }

    /// <summary>Σ_j a_j·(w_j − ŵ_j)² of an encoded row (the quantity minimised).</summary>
    public static double WeightedError(QuantFormat format, ReadOnlySpan<float> row, ReadOnlySpan<float> importance, ReadOnlySpan<byte> src)
    {
        var deq = new float[row.Length];
        QuantReference.DequantizeRow(format, src, deq);
        double e = 0;
        for (int j = 0; j < row.Length; j++)
        {
            double d = row[j] - (double)deq[j];
            e += importance[j] * d * d;
        }
        return e;
    }

    // Importances as given, or all ones when none is positive; negative or non-finite ones are refused.
    private static float[] Normalize(ReadOnlySpan<float> importance)
    {
        var a = importance.ToArray();
        bool any = false;
        foreach (float v in a)
        {
            if (!(v >= 0) || float.IsInfinity(v)) throw new ArgumentException($"WeightedQuantizer: importances must be finite and ≥ 0, got {v}");
            any |= v > 0;
        }
        if (!any) Array.Fill(a, 1f);
        return a;
    }

    private delegate void PlainEncoder(ReadOnlySpan<float> block, Span<byte> dst);

    private static void GgufQuantQ4(ReadOnlySpan<float> b, Span<byte> dst) => Formats.GgufQuant.QuantizeQ4_0(b, dst);
    private static void GgufQuantQ8(ReadOnlySpan<float> b, Span<byte> dst) => Formats.GgufQuant.QuantizeQ8_0(b, dst);
    private static void PlainInt8(ReadOnlySpan<float> b, Span<byte> dst) => QuantReference.QuantizeRow(QuantFormat.Int8, b, dst);

    // Symmetric integer blocks: [scale][codes]; Q4_0 packs codes+8 as nibbles (j low, j+16 high),
    // Q8_0 stores int8 codes after an f16 scale, Int8 after an f32 scale.
    private static void IntBlocks(ReadOnlySpan<float> row, float[] a, Span<byte> dst, int block, int qmin, int qmax, bool f16, PlainEncoder plain)
    {
        int scaleBytes = f16 ? 2 : 4;
        bool nibbles = qmax == 7;
        int blockBytes = scaleBytes + (nibbles ? block / 2 : block);
        var q = new int[block];
        var best = new int[block];
        for (int b0 = 0, bi = 0; b0 < row.Length; b0 += block, bi++)
        {
            var x = row.Slice(b0, block);
            var w = a.AsSpan(b0, block);
            var outBlock = dst.Slice(bi * blockBytes, blockBytes);
            plain(x, outBlock);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            if (amax == 0) continue;
            double bestErr = PlainError(x, w, outBlock, block, f16, nibbles, q);
            float bestD = float.NaN;
            double mNominal = nibbles ? 8 : qmax;
            for (int sign = -1; sign <= 1; sign += 2)
            {
                if (!nibbles && sign < 0) continue; // symmetric range: the sign of d does not matter
                for (double m = mNominal * 0.62; m <= mNominal * 1.12 + 1e-9; m += mNominal / 64)
                {
                    float d = StoredScale((float)(sign * amax / m), f16);
                    if (d == 0) continue;
                    double err = Round(x, w, d, qmin, qmax, q);
                    if (err < bestErr) { bestErr = err; bestD = d; q.CopyTo(best, 0); }
                    // weighted least-squares refit of the scale for these codes
                    double num = 0, den = 0;
                    for (int j = 0; j < block; j++) { num += w[j] * x[j] * q[j]; den += w[j] * (double)q[j] * q[j]; }
                    if (den <= 0) continue;
                    float d2 = StoredScale((float)(num / den), f16);
                    if (d2 == 0 || d2 == d) continue;
                    err = Round(x, w, d2, qmin, qmax, q);
                    if (err < bestErr) { bestErr = err; bestD = d2; q.CopyTo(best, 0); }
                }
            }
            if (float.IsNaN(bestD)) continue; // plain rounding was best
            if (f16) BinaryPrimitives.WriteHalfLittleEndian(outBlock, (Half)bestD);
            else BinaryPrimitives.WriteSingleLittleEndian(outBlock, bestD);
            var codes = outBlock[scaleBytes..];
            if (nibbles)
                for (int j = 0; j < block / 2; j++) codes[j] = (byte)((best[j] + 8) | ((best[j + block / 2] + 8) << 4));
            else
                for (int j = 0; j < block; j++) codes[j] = (byte)(sbyte)best[j];
        }
    }

    private static float StoredScale(float d, bool f16) => f16 ? (float)(Half)d : d;

    // Nearest codes for scale d (as the decoder multiplies: q·d) and their weighted error.
    private static double Round(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float d, int qmin, int qmax, Span<int> q)
    {
        float inv = 1f / d;
        double err = 0;
        for (int j = 0; j < x.Length; j++)
        {
            int c = (int)MathF.Round(x[j] * inv);
            c = Math.Clamp(c, qmin, qmax);
            // the division can round to the wrong neighbour: check the adjacent code
            float e0 = x[j] - c * d;
            int c1 = Math.Clamp(c + (e0 > 0 ? (d > 0 ? 1 : -1) : (d > 0 ? -1 : 1)), qmin, qmax);
            float e1 = x[j] - c1 * d;
            if (MathF.Abs(e1) < MathF.Abs(e0)) { c = c1; e0 = e1; }
            q[j] = c;
            err += w[j] * (double)e0 * e0;
        }
        return err;
    }

    // Weighted error of the plain encoding already in dst.
    private static double PlainError(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<byte> enc, int block, bool f16, bool nibbles, Span<int> scratch)
    {
        float d = f16 ? (float)BinaryPrimitives.ReadHalfLittleEndian(enc) : BinaryPrimitives.ReadSingleLittleEndian(enc);
        var codes = enc[(f16 ? 2 : 4)..];
        double err = 0;
        for (int j = 0; j < block; j++)
        {
            int c = nibbles ? (j < block / 2 ? codes[j] & 15 : codes[j - block / 2] >> 4) - 8 : (sbyte)codes[j];
            float e = x[j] - c * d;
            err += w[j] * (double)e * e;
        }
        return err;
    }
}
