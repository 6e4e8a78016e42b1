using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
namespace EdgeTune.Compression.Quantization.Calibration;

public static partial class WeightedQuantizer
{
    // NF4 (layout in QuantReference's NF4 remarks). Per block of 64: a target scale t_b searched over
    // f·absmax (f on a grid around 1, each with nearest codes and a weighted least-squares refit), as if the
    // scale were stored exactly; then the group headers are computed from the targets exactly as the plain
    // quantizer computes them from the absmax values (mean, max deviation / 127, int8 codes), and the
    // elements get their nearest codes under the decoded scales. The whole row is kept only when its
    // weighted error beats the plain encoding's (double quantization couples the blocks of a group).
    private static void Nf4Row(ReadOnlySpan<float> row, float[] a, Span<byte> dst)
    {
        const int block = QuantReference.Nf4Block;
        int cols = row.Length, nb = cols / block;
        QuantReference.QuantizeRow(QuantFormat.NF4, row, dst);
        double plainErr = WeightedError(QuantFormat.NF4, row, a, dst);

        var book = QuantReference.Nf4CodeBook;
        var target = new float[nb];
        for (int b = 0; b < nb; b++)
        {
            var x = row.Slice(b * block, block);
            var w = a.AsSpan(b * block, block);
            float amax = 0;
            foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
            target[b] = amax;
            if (amax == 0) continue;
            double best = Nf4BlockError(x, w, amax, book, out double num, out double den);
            for (double f = 0.60; f <= 1.15 + 1e-9; f += 1.0 / 64)
            {
                float s = (float)(f * amax);
                double e = Nf4BlockError(x, w, s, book, out num, out den);
                if (e < best) { best = e; target[b] = s; }
                if (den <= 0) continue;
                float s2 = (float)(num / den); // refit for these codes
                if (s2 <= 0 || s2 == s) continue;
                e = Nf4BlockError(x, w, s2, book, out _, out _);
                if (e < best) { best = e; target[b] = s2; }
            }
        }

        var cand = new byte[dst.Length];
        QuantReference.Nf4EncodeScales(target, cand.AsSpan(cols / 2, nb), cand.AsSpan(cols / 2 + nb));
        QuantReference.Nf4EncodeBlocks(row, cand);
        if (WeightedError(QuantFormat.NF4, row, a, cand) < plainErr) cand.CopyTo(dst);
    }

    // Weighted error of a block under scale s with nearest codes; num/den give the refit Σa·x·v / Σa·v².
    private static double Nf4BlockError(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float s, ReadOnlySpan<float> book, out double num, out double den)
    {
        float inv = 1f / s;
        double err = 0;
        num = 0;
        den = 0;
        for (int j = 0; j < x.Length; j++)
        {
            float v = book[QuantReference.Nf4Nearest(x[j] * inv, book)];
            float e = x[j] - v * s;
            err += w[j] * (double)e * e;
            num += w[j] * (double)x[j] * v;
            den += w[j] * (double)v * v;
        }
        return err;
    }
}
