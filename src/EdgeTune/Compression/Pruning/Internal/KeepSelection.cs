using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
namespace EdgeTune.Compression.Pruning.Internal;

/// <summary>Turns importance scores into keep flags (1 keep, 0 prune). Ties are broken by position: of equal
/// scores the earlier one is pruned first, so results are deterministic.</summary>
internal static class KeepSelection
{
    /// <summary>Prunes the <paramref name="prune"/> lowest scores of <paramref name="scores"/> (a segment of <paramref name="keep"/>).</summary>
    public static void PruneLowest(ReadOnlySpan<float> scores, Span<byte> keep, long prune)
    {
        keep.Fill(1);
        if (prune <= 0) return;
        if (prune >= scores.Length) { keep.Clear(); return; }
        float threshold = KthSmallest(scores, (int)prune - 1);
        long left = prune;
        // Everything strictly below the threshold goes; then ties at the threshold, front to back.
        for (int i = 0; i < scores.Length; i++) if (scores[i] < threshold) { keep[i] = 0; left--; }
        for (int i = 0; i < scores.Length && left > 0; i++) if (scores[i] == threshold) { keep[i] = 0; left--; }
    }

    /// <summary>In every group of <paramref name="m"/> consecutive scores of each row keeps the <paramref name="n"/> largest;
    /// a trailing group shorter than m stays dense.</summary>
    public static void NOfM(ReadOnlySpan<float> scores, Span<byte> keep, int rows, int cols, int n, int m)
    {
        keep.Fill(1);
        Span<int> order = stackalloc int[m];
        for (int r = 0; r < rows; r++)
            for (int g = 0; g + m <= cols; g += m)
            {
                int off = r * cols + g;
                var s = scores.Slice(off, m);
                for (int i = 0; i < m; i++) order[i] = i;
                // Insertion sort by score descending, earlier position first among equals (m is tiny).
                for (int i = 1; i < m; i++)
                {
                    int v = order[i], j = i - 1;
                    while (j >= 0 && s[order[j]] < s[v]) { order[j + 1] = order[j]; j--; }
                    order[j + 1] = v;
                }
                for (int i = n; i < m; i++) keep[off + order[i]] = 0;
            }
    }

    /// <summary>The k-th smallest value (0-based) of <paramref name="values"/>; NaN counts as smallest.</summary>
    public static float KthSmallest(ReadOnlySpan<float> values, int k)
    {
        var copy = values.ToArray();
        for (int i = 0; i < copy.Length; i++) if (float.IsNaN(copy[i])) copy[i] = float.NegativeInfinity;
        Array.Sort(copy);
        return copy[k];
    }
}
