namespace EdgeTune.Tensors.Internal;

/// <summary>
/// The tiled (flash-attention style) float forward behind <see cref="Attention"/>, written once
/// over <c>TV : IVec&lt;TV&gt;</c>. One call handles one (batch, query head); the caller hands over
/// <see cref="ForwardScratch"/> floats of scratch. Only one block of bq × bk scores exists at a time.
/// </summary>
internal static unsafe class AttentionKernel
{
    /// <summary>Below this many queries (token-by-token decoding) the forward reads keys in place instead of tiling.</summary>
    public const int DirectQueries = 4;

    public static long ForwardScratch(bool direct, int keys, int d, int bq, int bk) =>
        direct ? 2L * d + bk : 2L * keys * d + 2L * bq * d + (long)bq * bk + 2L * bq;

    /// <summary>Lowest key position visible from query position <paramref name="pos"/>.</summary>
    internal static int FirstKey(int pos, int window) => window > 0 ? Math.Max(0, pos - window + 1) : 0;

    /// <summary>
    /// One head's forward. Query row i (position qPos0 + i) is q[i·qStride ..+d]; key/value j is
    /// k/v[j·kvStride ..+d] for j &lt; nKeys. Writes o[i·oStride ..+d] and, when lse is not null,
    /// lse[i] = the log-sum-exp of the row's scaled scores.
    /// </summary>
    public static void ForwardHead<TV>(float* q, int qStride, int nq, int qPos0, float* k, float* v, int kvStride,
        int nKeys, float* o, int oStride, float* lse, int d, float scale, int window, int bq, int bk, bool direct, float* scratch)
        where TV : struct, IVec<TV>
    {
        if (nq == 0) return;
        if (direct)
        {
            for (int i = 0; i < nq; i++)
                ForwardRowDirect<TV>(q + (long)i * qStride, qPos0 + i, k, v, kvStride, o + (long)i * oStride,
                    lse == null ? null : lse + i, d, scale, window, bk, scratch);
            return;
        }
        int kBase = FirstKey(qPos0, window);
        int nk = nKeys - kBase;
        float* kt = scratch;            // [d, nk]  keys transposed
        float* vc = kt + (long)d * nk;  // [nk, d]  values, contiguous
        float* qs = vc + (long)nk * d;  // [bq, d]  scaled query block
        float* acc = qs + bq * d;       // [bq, d]  unnormalised output block
        float* s = acc + bq * d;        // [bq, bk] scores, then probabilities
        float* rowMax = s + bq * bk;    // [bq]
        float* rowSum = rowMax + bq;    // [bq]
        for (int j = 0; j < nk; j++)
        {
            float* kr = k + (long)(kBase + j) * kvStride;
            for (int c = 0; c < d; c++) kt[(long)c * nk + j] = kr[c];
            new ReadOnlySpan<float>(v + (long)(kBase + j) * kvStride, d).CopyTo(new Span<float>(vc + (long)j * d, d));
        }
        for (int i0 = 0; i0 < nq; i0 += bq)
        {
            int mq = Math.Min(bq, nq - i0);
            for (int r = 0; r < mq; r++)
            {
                float* qr = q + (long)(i0 + r) * qStride;
                for (int c = 0; c < d; c++) qs[r * d + c] = qr[c] * scale;
                rowMax[r] = float.NegativeInfinity;
                rowSum[r] = 0f;
            }
            new Span<float>(acc, mq * d).Clear();
            int pFirst = qPos0 + i0;
            int jEnd = pFirst + mq; // exclusive: the last row sees keys up to its own position
            for (int j0 = FirstKey(pFirst, window); j0 < jEnd; j0 += bk)
            {
                int nb = Math.Min(bk, jEnd - j0);
                BlockMath.MulAcc<TV>(qs, d, 1, kt + (j0 - kBase), nk, s, bk, mq, d, nb, accumulate: false);
                for (int r = 0; r < mq; r++)
                {
                    float* sr = s + r * bk;
                    int pos = pFirst + r;
                    int lo = Math.Max(j0, FirstKey(pos, window)) - j0, hi = Math.Min(j0 + nb - 1, pos) - j0;
                    if (hi < lo) { new Span<float>(sr, nb).Clear(); continue; }
                    float mNew = MathF.Max(rowMax[r], BlockMath.Max<TV>(sr + lo, hi - lo + 1));
                    float alpha = MathF.Exp(rowMax[r] - mNew);
                    float sum = BlockMath.ExpShiftSum<TV>(sr + lo, hi - lo + 1, mNew);
                    new Span<float>(sr, lo).Clear();
                    new Span<float>(sr + hi + 1, nb - hi - 1).Clear();
                    rowSum[r] = rowSum[r] * alpha + sum;
                    rowMax[r] = mNew;
                    if (alpha != 1f) BlockMath.Scale<TV>(acc + r * d, d, alpha);
                }
                BlockMath.MulAcc<TV>(s, bk, 1, vc + (long)(j0 - kBase) * d, d, acc, d, mq, nb, d, accumulate: true);
            }
            for (int r = 0; r < mq; r++)
            {
                float* or = o + (long)(i0 + r) * oStride;
                float inv = 1f / rowSum[r];
                for (int c = 0; c < d; c++) or[c] = acc[r * d + c] * inv;
                if (lse != null) lse[i0 + r] = rowMax[r] + MathF.Log(rowSum[r]);
            }
        }
    }

    /// <summary>
    /// One query row at position <paramref name="pos"/> against keys/values read in place (rows of
    /// kvStride): scores by dot products, bk keys at a time with the same online softmax. Used for
    /// decoding, where transposing the whole cache for one query would cost as much as the attention.
    /// </summary>
    private static void ForwardRowDirect<TV>(float* q, int pos, float* k, float* v, int kvStride, float* o, float* lse,
        int d, float scale, int window, int bk, float* scratch) where TV : struct, IVec<TV>
    {
        float* qs = scratch, acc = qs + d, s = acc + d;
        for (int c = 0; c < d; c++) { qs[c] = q[c] * scale; acc[c] = 0f; }
        float rowMax = float.NegativeInfinity, rowSum = 0f;
        for (int j0 = FirstKey(pos, window); j0 <= pos; j0 += bk)
        {
            int nb = Math.Min(bk, pos + 1 - j0);
            for (int j = 0; j < nb; j++) s[j] = BlockMath.Dot<TV>(qs, k + (long)(j0 + j) * kvStride, d);
            float mNew = MathF.Max(rowMax, BlockMath.Max<TV>(s, nb));
            float alpha = MathF.Exp(rowMax - mNew);
            rowSum = rowSum * alpha + BlockMath.ExpShiftSum<TV>(s, nb, mNew);
            rowMax = mNew;
            if (alpha != 1f) BlockMath.Scale<TV>(acc, d, alpha);
            for (int j = 0; j < nb; j++) BlockMath.Axpy<TV>(s[j], v + (long)(j0 + j) * kvStride, acc, d);
        }
        float inv = 1f / rowSum;
        for (int c = 0; c < d; c++) o[c] = acc[c] * inv;
        if (lse != null) *lse = rowMax + MathF.Log(rowSum);
    }
}
