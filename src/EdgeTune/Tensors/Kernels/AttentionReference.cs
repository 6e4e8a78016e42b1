using System.Numerics;

namespace EdgeTune.Tensors;

/// <summary>
/// Plain scalar causal grouped-query attention, generic over the element type so gradient checks
/// run it in double. It builds each head's full softmax matrix: the definition the tiled fast
/// path (<see cref="Attention"/>) is tested against, kept forever. Layouts and arguments are those
/// of <see cref="Attention"/>; <c>scale</c> is explicit here.
/// </summary>
public static class AttentionReference
{
    /// <summary>Forward. q: (B,T,Hq,D) k,v: (B,T,Hkv,D) → output: (B,T,Hq,D), logSumExp: (B,Hq,T) (may be empty).</summary>
    public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, Span<T> output, Span<T> logSumExp,
        int batch, int time, int headsQ, int headsKv, int headDim, T scale, int window = 0)
        where T : IFloatingPointIeee754<T> =>
        Decode(q, k, v, output, logSumExp, batch, time, 0, time, headsQ, headsKv, headDim, scale, window);

    /// <summary>
    /// Attention of <paramref name="newTokens"/> queries at positions [start, start+newTokens) over
    /// cached keys/values [0, start+newTokens). q, output: (B,Tq,Hq,D); kCache, vCache: (B,capacity,Hkv,D);
    /// logSumExp: (B,Hq,Tq) or empty.
    /// </summary>
    public static void Decode<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> kCache, ReadOnlySpan<T> vCache, Span<T> output, Span<T> logSumExp,
        int batch, int newTokens, int start, int capacity, int headsQ, int headsKv, int headDim, T scale, int window = 0)
        where T : IFloatingPointIeee754<T>
    {
        AttentionChecks.Decode("AttentionReference.Decode", q.Length, kCache.Length, vCache.Length, output.Length, logSumExp.Length,
            batch, newTokens, start, capacity, headsQ, headsKv, headDim, window);
        int group = headsQ / headsKv, d = headDim;
        var scores = new T[start + newTokens];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < headsQ; h++)
            {
                int kvh = h / group;
                for (int i = 0; i < newTokens; i++)
                {
                    int pos = start + i;
                    int lo = window > 0 ? Math.Max(0, pos - window + 1) : 0;
                    int qo = ((b * newTokens + i) * headsQ + h) * d;
                    T max = T.NegativeInfinity;
                    for (int j = lo; j <= pos; j++)
                    {
                        int ko = ((b * capacity + j) * headsKv + kvh) * d;
                        T s = T.Zero;
                        for (int c = 0; c < d; c++) s += q[qo + c] * kCache[ko + c];
                        scores[j] = s * scale;
                        max = T.Max(max, scores[j]);
                    }
                    T sum = T.Zero;
                    for (int j = lo; j <= pos; j++) { scores[j] = T.Exp(scores[j] - max); sum += scores[j]; }
                    for (int c = 0; c < d; c++)
                    {
                        T acc = T.Zero;
                        for (int j = lo; j <= pos; j++) acc += scores[j] * vCache[((b * capacity + j) * headsKv + kvh) * d + c];
                        output[qo + c] = acc / sum;
                    }
                    if (!logSumExp.IsEmpty) logSumExp[(b * headsQ + h) * newTokens + i] = max + T.Log(sum);
                }
            }
    }

    /// <summary>
    /// Backward from the full probability matrix. dOut: (B,T,Hq,D); accumulates dq: (B,T,Hq,D),
    /// dk, dv: (B,T,Hkv,D).
    /// </summary>
    public static void Backward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> dOut,
        Span<T> dq, Span<T> dk, Span<T> dv, int batch, int time, int headsQ, int headsKv, int headDim, T scale, int window = 0)
        where T : IFloatingPointIeee754<T>
    {
        AttentionChecks.Decode("AttentionReference.Backward", q.Length, k.Length, v.Length, dOut.Length, 0,
            batch, time, 0, time, headsQ, headsKv, headDim, window);
        AttentionChecks.Gradients("AttentionReference.Backward", dq.Length, dk.Length, dv.Length, batch, time, headsQ, headsKv, headDim);
        int group = headsQ / headsKv, d = headDim, n = time;
        var p = new T[n * n];
        var dp = new T[n];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < headsQ; h++)
            {
                int kvh = h / group;
                int Qo(int i) => ((b * n + i) * headsQ + h) * d;
                int Ko(int j) => ((b * n + j) * headsKv + kvh) * d;
                Array.Clear(p);
                for (int i = 0; i < n; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0;
                    T max = T.NegativeInfinity;
                    for (int j = lo; j <= i; j++)
                    {
                        T s = T.Zero;
                        for (int c = 0; c < d; c++) s += q[Qo(i) + c] * k[Ko(j) + c];
                        p[i * n + j] = s * scale;
                        max = T.Max(max, p[i * n + j]);
                    }
                    T sum = T.Zero;
                    for (int j = lo; j <= i; j++) { p[i * n + j] = T.Exp(p[i * n + j] - max); sum += p[i * n + j]; }
                    for (int j = lo; j <= i; j++) p[i * n + j] /= sum;
                }
                for (int i = 0; i < n; i++)
                {
                    // dP[i,j] = dO_i · v_j ; dS = P ⊙ (dP − Σ_j P dP) ; dq_i += scale Σ_j dS k_j ; dk_j += scale dS q_i ; dv_j += P dO_i
                    T rowDot = T.Zero;
                    for (int j = 0; j <= i; j++)
                    {
                        T s = T.Zero;
                        for (int c = 0; c < d; c++) s += dOut[Qo(i) + c] * v[Ko(j) + c];
                        dp[j] = s;
                        rowDot += p[i * n + j] * s;
                    }
                    for (int j = 0; j <= i; j++)
                    {
                        T pij = p[i * n + j];
                        if (pij == T.Zero) continue;
                        T ds = pij * (dp[j] - rowDot) * scale;
                        for (int c = 0; c < d; c++)
                        {
                            dq[Qo(i) + c] += ds * k[Ko(j) + c];
                            dk[Ko(j) + c] += ds * q[Qo(i) + c];
                            dv[Ko(j) + c] += pij * dOut[Qo(i) + c];
                        }
                    }
                }
            }
    }
}
