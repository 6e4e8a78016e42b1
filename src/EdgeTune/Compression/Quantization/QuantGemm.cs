using EdgeTune.Tensors;

namespace EdgeTune.Compression.Quantization;

/// <summary>
/// Products with a quantized weight W [N, K] (a linear layer's [out, in]): the forward y = x·Wᵀ and the
/// input gradient dx = dy·W. No dequantized copy of the whole of W ever exists: W is widened a panel of
/// rows at a time. (Scaffold: dequantized row panels through <see cref="Gemm"/>; the in-packing path
/// replaces it.)
/// </summary>
public static class QuantGemm
{
    private const int Panel = 64;

    /// <summary>y[M, N] (+)= x[M, K] · Wᵀ.</summary>
    public static void ABt(ReadOnlySpan<float> x, QuantizedMatrix w, Span<float> y, int m, bool accumulate = false)
    {
        int n = w.Rows, k = w.Cols;
        Gemm.Check("QuantGemm.ABt", x.Length, n * k, y.Length, m, k, n, (long)n * k);
        if (m == 0 || n == 0) return;
        var panel = new float[Panel * k];
        var part = new float[m * Panel];
        for (int j0 = 0; j0 < n; j0 += Panel)
        {
            int nb = Math.Min(Panel, n - j0);
            w.DequantizeRows(j0, nb, panel);
            Gemm.ABt(x, panel.AsSpan(0, nb * k), part.AsSpan(0, m * nb), m, k, nb);
            for (int i = 0; i < m; i++)
            {
                var src = part.AsSpan(i * nb, nb);
                var dst = y.Slice(i * n + j0, nb);
                if (accumulate) for (int j = 0; j < nb; j++) dst[j] += src[j];
                else src.CopyTo(dst);
            }
        }
    }

    /// <summary>dx[M, K] (+)= dy[M, N] · W.</summary>
    public static void AB(ReadOnlySpan<float> dy, QuantizedMatrix w, Span<float> dx, int m, bool accumulate = false)
    {
        int n = w.Rows, k = w.Cols;
        Gemm.Check("QuantGemm.AB", dy.Length, n * k, dx.Length, m, n, k, (long)n * k);
        if (m == 0 || k == 0) return;
        if (!accumulate) dx.Slice(0, m * k).Clear();
        var panel = new float[Panel * k];
        var part = new float[m * Panel];
        for (int j0 = 0; j0 < n; j0 += Panel)
        {
            int nb = Math.Min(Panel, n - j0);
            w.DequantizeRows(j0, nb, panel);
            for (int i = 0; i < m; i++) dy.Slice(i * n + j0, nb).CopyTo(part.AsSpan(i * nb, nb));
            Gemm.AB(part.AsSpan(0, m * nb), panel.AsSpan(0, nb * k), dx, m, nb, k, accumulate: true);
        }
    }
}
