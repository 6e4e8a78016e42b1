namespace EdgeTune.Tensors.Internal;

/// <summary>
/// The FlashAttention-2 backward behind <see cref="Attention.Backward"/>, written once over
/// <c>TV : IVec&lt;TV&gt;</c>: for one query head it recomputes P = exp(S − lse) block by block from
/// q, k and the saved log-sum-exp, accumulates dq, and writes the head's own share of dk and dv
/// into contiguous [T, d] buffers, which the caller adds into dk, dv in query-head order (so the
/// sum is the same whichever way the work was split over threads).
/// </summary>
internal static unsafe class AttentionBackwardKernel
{
    /// <summary>Floats for the gathered keys/values of one kv head (Kᵀ, K, Vᵀ).</summary>
    public static long GatherScratch(int time, int d) => 3L * time * d;

    /// <summary>Floats of working memory for one <see cref="Head{TV}"/> call.</summary>
    public static long HeadScratch(int time, int d, int bq, int bk) => time + 3L * bq * d + 2L * bq * bk;

    /// <summary>Copies one kv head's keys and values (rows of kvStride) into kt [d,T], kc [T,d], vt [d,T].</summary>
    public static void Gather(float* k, float* v, int kvStride, int time, int d, float* kt, float* kc, float* vt)
    {
        for (int j = 0; j < time; j++)
        {
            float* kr = k + (long)j * kvStride, vr = v + (long)j * kvStride;
            for (int c = 0; c < d; c++)
            {
                kt[(long)c * time + j] = kr[c];
                kc[(long)j * d + c] = kr[c];
                vt[(long)c * time + j] = vr[c];
            }
        }
    }

    /// <summary>
    /// One query head. Its rows are q/o/dOut/dq[i·qStride ..+d], its log-sum-exp lse[0..T).
    /// Accumulates dq; overwrites dkc, dvc [T, d] with this head's contribution to dk, dv.
    /// </summary>
    public static void Head<TV>(float* q, float* o, float* dOut, float* dq, int qStride, float* lse,
        float* kt, float* kc, float* vt, float* dkc, float* dvc, int time, int d, float scale, int window, int bq, int bk, float* scratch)
        where TV : struct, IVec<TV>
    {
        float* di = scratch;                 // [T]     rowsum(dO ⊙ O)
        float* qs = di + time;               // [bq, d] scaled queries
        float* dob = qs + bq * d;            // [bq, d] output gradient block
        float* dqb = dob + bq * d;           // [bq, d] dq block
        float* p = dqb + bq * d;             // [bq, bk] probabilities
        float* ds = p + bq * bk;             // [bq, bk] dP, then dS
        new Span<float>(dkc, checked(time * d)).Clear();
        new Span<float>(dvc, checked(time * d)).Clear();
        for (int i = 0; i < time; i++)
            di[i] = BlockMath.Dot<TV>(dOut + (long)i * qStride, o + (long)i * qStride, d);
        for (int i0 = 0; i0 < time; i0 += bq)
        {
            int mq = Math.Min(bq, time - i0);
            for (int r = 0; r < mq; r++)
            {
                float* qr = q + (long)(i0 + r) * qStride, dor = dOut + (long)(i0 + r) * qStride;
                for (int c = 0; c < d; c++) { qs[r * d + c] = qr[c] * scale; dob[r * d + c] = dor[c]; }
            }
            new Span<float>(dqb, mq * d).Clear();
            int jEnd = i0 + mq;
            for (int j0 = AttentionKernel.FirstKey(i0, window); j0 < jEnd; j0 += bk)
            {
                int nb = Math.Min(bk, jEnd - j0);
                // P = exp(Qs·Kᵀ − lse), masked to the causal window
                BlockMath.MulAcc<TV>(qs, d, 1, kt + j0, time, p, bk, mq, d, nb, accumulate: false);
                for (int r = 0; r < mq; r++)
                {
                    float* pr = p + r * bk;
                    int pos = i0 + r;
                    int lo = Math.Max(j0, AttentionKernel.FirstKey(pos, window)) - j0, hi = Math.Min(j0 + nb - 1, pos) - j0;
                    if (hi < lo) { new Span<float>(pr, nb).Clear(); continue; }
                    BlockMath.ExpShiftScale<TV>(pr + lo, pr + lo, hi - lo + 1, lse[pos], 1f, accumulate: false);
                    new Span<float>(pr, lo).Clear();
                    new Span<float>(pr + hi + 1, nb - hi - 1).Clear();
                }
                // dV_j += Pᵀ dO ; dP = dO Vᵀ ; dS = P ⊙ (dP − D_i) ; dQ += dS K ; dK_j += dSᵀ Qs
                BlockMath.MulAcc<TV>(p, 1, bk, dob, d, dvc + (long)j0 * d, d, nb, mq, d, accumulate: true);
                BlockMath.MulAcc<TV>(dob, d, 1, vt + j0, time, ds, bk, mq, d, nb, accumulate: false);
                for (int r = 0; r < mq; r++) BlockMath.SoftmaxBackward<TV>(p + r * bk, ds + r * bk, nb, di[i0 + r]);
                BlockMath.MulAcc<TV>(ds, bk, 1, kc + (long)j0 * d, d, dqb, d, mq, nb, d, accumulate: true);
                BlockMath.MulAcc<TV>(ds, 1, bk, qs, d, dkc + (long)j0 * d, d, nb, mq, d, accumulate: true);
            }
            for (int r = 0; r < mq; r++)
                BlockMath.Axpy<TV>(scale, dqb + r * d, dq + (long)(i0 + r) * qStride, d);
        }
    }

    /// <summary>dst[j·dstStride ..+d] += part[j·d ..+d] for j &lt; T.</summary>
    public static void AddRows<TV>(float* part, float* dst, int dstStride, int time, int d) where TV : struct, IVec<TV>
    {
        for (int j = 0; j < time; j++) BlockMath.Axpy<TV>(1f, part + (long)j * d, dst + (long)j * dstStride, d);
    }
}
