using System.Buffers;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Causal scaled-dot-product self-attention with grouped-query heads (GQA), tiled like
/// FlashAttention: forward walks blocks of queries × blocks of keys with a running max and sum,
/// so no T×T matrix exists, and saves only each row's log-sum-exp; backward recomputes the
/// probabilities block by block (FlashAttention-2). Query head h reads kv head h / (Hq/Hkv).
/// An optional sliding window (Mistral) lets position i see keys (i − window, i]; 0 = unlimited.
/// </summary>
/// <remarks>
/// Layouts are row-major as the projections produce them: q, output, dOut: (B,T,Hq,D);
/// k, v: (B,T,Hkv,D); logSumExp: (B,Hq,T). <c>scale</c> defaults to 1/√D. Work is spread over
/// <see cref="WorkerPool.Shared"/>: forward over (batch, query head), backward over
/// (batch, kv head) so the gradients of query heads that share a kv head are summed in a fixed
/// order; results are bit-identical for any thread count. logSumExp holds log Σ_j exp(scale·q·k_j)
/// per query row, exactly what <see cref="Backward"/> wants back. The block products are done
/// in-kernel (not through <see cref="Gemm"/>), so no worker task ever starts nested pool work; like
/// every pooled kernel, these must not be called from inside a <see cref="WorkerPool"/> task.
/// </remarks>
public static unsafe class Attention
{
    /// <summary>Queries per tile.</summary>
    public const int BlockQ = 32;

    /// <summary>Keys per tile.</summary>
    public const int BlockK = 64;

    /// <summary>q: (B,T,Hq,D) k,v: (B,T,Hkv,D) → output: (B,T,Hq,D) (overwritten), logSumExp: (B,Hq,T) (overwritten; empty to skip).</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output, Span<float> logSumExp,
        int batch, int time, int headsQ, int headsKv, int headDim, float? scale = null, int window = 0) =>
        Run("Attention.Forward", q, k, v, output, logSumExp, batch, time, 0, time, headsQ, headsKv, headDim, scale, window);

    /// <summary>
    /// Generation with a KV cache: <paramref name="newTokens"/> queries at positions
    /// [start, start+newTokens) attend causally to cached keys/values [0, start+newTokens).
    /// q, output: (B,Tq,Hq,D); kCache, vCache: (B,capacity,Hkv,D), of which the first
    /// start+newTokens positions are used (capacity is the per-batch stride);
    /// logSumExp: (B,Hq,Tq) or empty.
    /// </summary>
    public static void Decode(ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, Span<float> output, Span<float> logSumExp,
        int batch, int newTokens, int start, int capacity, int headsQ, int headsKv, int headDim, float? scale = null, int window = 0) =>
        Run("Attention.Decode", q, kCache, vCache, output, logSumExp, batch, newTokens, start, capacity, headsQ, headsKv, headDim, scale, window);

    private static void Run(string op, ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, Span<float> output, Span<float> logSumExp,
        int batch, int newTokens, int start, int capacity, int headsQ, int headsKv, int headDim, float? scale, int window)
    {
        AttentionChecks.Decode(op, q.Length, kCache.Length, vCache.Length, output.Length, logSumExp.Length,
            batch, newTokens, start, capacity, headsQ, headsKv, headDim, window);
        float sc = scale ?? 1f / MathF.Sqrt(headDim);
        switch (Simd.Width)
        {
            case SimdWidth.V512: DecodeCore<V512>(q, kCache, vCache, output, logSumExp, batch, newTokens, start, capacity, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            case SimdWidth.V256: DecodeCore<V256>(q, kCache, vCache, output, logSumExp, batch, newTokens, start, capacity, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            case SimdWidth.V128: DecodeCore<V128>(q, kCache, vCache, output, logSumExp, batch, newTokens, start, capacity, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            default: AttentionReference.Decode(q, kCache, vCache, output, logSumExp, batch, newTokens, start, capacity, headsQ, headsKv, headDim, sc, window); break;
        }
    }

    /// <summary>
    /// Backward. q: (B,T,Hq,D) k,v: (B,T,Hkv,D), output and logSumExp as saved by <see cref="Forward"/>,
    /// dOut: (B,T,Hq,D). Accumulates (+=) dq: (B,T,Hq,D), dk, dv: (B,T,Hkv,D).
    /// </summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> output,
        ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOut, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int time, int headsQ, int headsKv, int headDim, float? scale = null, int window = 0)
    {
        const string op = "Attention.Backward";
        AttentionChecks.Decode(op, q.Length, k.Length, v.Length, output.Length, logSumExp.Length,
            batch, time, 0, time, headsQ, headsKv, headDim, window);
        ShapeException.RequireLength(op, "logSumExp", logSumExp.Length, (long)batch * headsQ * time);
        ShapeException.RequireLength(op, "dOut", dOut.Length, (long)batch * time * headsQ * headDim);
        AttentionChecks.Gradients(op, dq.Length, dk.Length, dv.Length, batch, time, headsQ, headsKv, headDim);
        float sc = scale ?? 1f / MathF.Sqrt(headDim);
        switch (Simd.Width)
        {
            case SimdWidth.V512: BackwardCore<V512>(q, k, v, output, logSumExp, dOut, dq, dk, dv, batch, time, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            case SimdWidth.V256: BackwardCore<V256>(q, k, v, output, logSumExp, dOut, dq, dk, dv, batch, time, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            case SimdWidth.V128: BackwardCore<V128>(q, k, v, output, logSumExp, dOut, dq, dk, dv, batch, time, headsQ, headsKv, headDim, sc, window, BlockQ, BlockK); break;
            default: AttentionReference.Backward(q, k, v, dOut, dq, dk, dv, batch, time, headsQ, headsKv, headDim, sc, window); break;
        }
    }

    /// <summary>
    /// The width-generic forward/decode (arguments checked by the caller); tile sizes are parameters
    /// so tests can straddle them. Tasks are (batch, query head, range of query tiles), the ranges
    /// made just long enough to give every thread work; a row's arithmetic does not depend on its
    /// range, so the output is the same for any thread count.
    /// </summary>
    internal static void DecodeCore<TV>(ReadOnlySpan<float> q, ReadOnlySpan<float> kCache, ReadOnlySpan<float> vCache, Span<float> output, Span<float> logSumExp,
        int batch, int newTokens, int start, int capacity, int headsQ, int headsKv, int headDim, float scale, int window, int bq, int bk,
        int? rangeCount = null) where TV : struct, IVec<TV>
    {
        if (batch == 0 || newTokens == 0) return;
        int group = headsQ / headsKv, d = headDim, heads = batch * headsQ;
        bool direct = newTokens < AttentionKernel.DirectQueries;
        int tiles = (newTokens + bq - 1) / bq;
        // ranges of at least two tiles, enough of them for about two tasks per thread
        int ranges = direct ? 1 : rangeCount ?? Math.Clamp((2 * WorkerPool.Shared.Threads + heads - 1) / heads, 1, Math.Max(1, tiles / 2));
        int rangeRows = (tiles + ranges - 1) / ranges * bq;
        ranges = (newTokens + rangeRows - 1) / rangeRows;
        int scratchLen = checked((int)AttentionKernel.ForwardScratch(direct, start + newTokens, d, bq, bk));
        bool saveLse = !logSumExp.IsEmpty;
        var job = DecodeJob.Rent();
        try
        {
            fixed (float* pq = q, pk = kCache, pv = vCache, po = output, pl = logSumExp)
            {
                job.Q = pq; job.K = pk; job.V = pv; job.O = po; job.Lse = saveLse ? pl : null;
                job.Ranges = ranges; job.RangeRows = rangeRows; job.HeadsQ = headsQ; job.HeadsKv = headsKv; job.Group = group;
                job.NewTokens = newTokens; job.Start = start; job.Capacity = capacity; job.D = d; job.Window = window;
                job.Bq = bq; job.Bk = bk; job.ScratchLen = scratchLen; job.Scale = scale; job.Direct = direct;
                job.Kernel = &DecodeTask<TV>;
                WorkerPool.Shared.Run(heads * ranges, job.Body);
            }
        }
        finally { DecodeJob.Return(job); }
    }

    /// <summary>One (batch, query head, range of query rows) task of <see cref="DecodeCore{TV}"/>.</summary>
    private static void DecodeTask<TV>(DecodeJob j, int task) where TV : struct, IVec<TV>
    {
        int bh = task / j.Ranges, b = bh / j.HeadsQ, h = bh % j.HeadsQ, kvh = h / j.Group, d = j.D;
        int headsQ = j.HeadsQ, headsKv = j.HeadsKv, newTokens = j.NewTokens, start = j.Start;
        int i0 = task % j.Ranges * j.RangeRows, nq = Math.Min(j.RangeRows, newTokens - i0);
        float[] buf = ArrayPool<float>.Shared.Rent(j.ScratchLen);
        try
        {
            fixed (float* s = buf)
                AttentionKernel.ForwardHead<TV>(
                    j.Q + (((long)b * newTokens + i0) * headsQ + h) * d, headsQ * d, nq, start + i0,
                    j.K + ((long)b * j.Capacity * headsKv + kvh) * d, j.V + ((long)b * j.Capacity * headsKv + kvh) * d, headsKv * d, start + i0 + nq,
                    j.O + (((long)b * newTokens + i0) * headsQ + h) * d, headsQ * d,
                    j.Lse != null ? j.Lse + ((long)b * headsQ + h) * newTokens + i0 : null,
                    d, j.Scale, j.Window, j.Bq, j.Bk, j.Direct, s);
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
    }

    /// <summary>The arguments of one <see cref="DecodeCore{TV}"/> call, reused by the next call on the same thread
    /// (a decode step then allocates no closure).</summary>
    private sealed class DecodeJob
    {
        [ThreadStatic] private static DecodeJob? t_idle;

        public readonly Action<int> Body;
        public delegate*<DecodeJob, int, void> Kernel;
        public float* Q, K, V, O, Lse;
        public int Ranges, RangeRows, HeadsQ, HeadsKv, Group, NewTokens, Start, Capacity, D, Window, Bq, Bk, ScratchLen;
        public float Scale;
        public bool Direct;

        private DecodeJob() => Body = t => Kernel(this, t);

        /// <summary>This thread's idle job, or a new one when it is in use.</summary>
        public static DecodeJob Rent()
        {
            var j = t_idle;
            if (j is null) return new DecodeJob();
            t_idle = null;
            return j;
        }

        public static void Return(DecodeJob j)
        {
            j.Q = j.K = j.V = j.O = j.Lse = null;
            t_idle = j;
        }
    }

    /// <summary>
    /// The width-generic backward (arguments checked by the caller). With enough (batch, kv head)
    /// pairs to fill the pool each task does one kv head and its query heads; otherwise
    /// (<paramref name="perHead"/>) tasks do one query head each, keep their dk/dv shares in
    /// scratch, and a second pass adds them per kv head. Both add the shares in the same order,
    /// so the result is bit-identical either way.
    /// </summary>
    internal static void BackwardCore<TV>(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> output,
        ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dOut, Span<float> dq, Span<float> dk, Span<float> dv,
        int batch, int time, int headsQ, int headsKv, int headDim, float scale, int window, int bq, int bk, bool? perHead = null)
        where TV : struct, IVec<TV>
    {
        if (batch == 0 || time == 0) return;
        int group = headsQ / headsKv, d = headDim;
        var pool = WorkerPool.Shared;
        bool split = perHead ?? (group > 1 && batch * headsKv < pool.Threads);
        long gather = AttentionBackwardKernel.GatherScratch(time, d), share = (long)time * d;
        long work = AttentionBackwardKernel.HeadScratch(time, d, bq, bk);
        fixed (float* pq = q, pk = k, pv = v, po = output, pl = logSumExp, pdo = dOut, pdq = dq, pdk = dk, pdv = dv)
        {
            float* q0 = pq, k0 = pk, v0 = pv, o0 = po, l0 = pl, do0 = pdo, dq0 = pdq, dk0 = pdk, dv0 = pdv;
            int qStride = headsQ * d, kvStride = headsKv * d;
            long QOff(int b, int h) => ((long)b * time * headsQ + h) * d;
            long KvOff(int b, int kvh) => ((long)b * time * headsKv + kvh) * d;
            // one query head, its kv head already gathered into s; its dk/dv shares go to dkc/dvc
            void Head(int b, int h, float* s, float* dkc, float* dvc) =>
                AttentionBackwardKernel.Head<TV>(q0 + QOff(b, h), o0 + QOff(b, h), do0 + QOff(b, h), dq0 + QOff(b, h), qStride,
                    l0 + ((long)b * headsQ + h) * time, s, s + share, s + 2 * share, dkc, dvc, time, d, scale, window, bq, bk, s + gather);
            void Gather(int b, int kvh, float* s) =>
                AttentionBackwardKernel.Gather(k0 + KvOff(b, kvh), v0 + KvOff(b, kvh), kvStride, time, d, s, s + share, s + 2 * share);
            void Add(int b, int kvh, float* dkc, float* dvc)
            {
                AttentionBackwardKernel.AddRows<TV>(dkc, dk0 + KvOff(b, kvh), kvStride, time, d);
                AttentionBackwardKernel.AddRows<TV>(dvc, dv0 + KvOff(b, kvh), kvStride, time, d);
            }
            if (!split)
            {
                int len = checked((int)(gather + work + 2 * share));
                pool.Run(batch * headsKv, task =>
                {
                    int b = task / headsKv, kvh = task % headsKv;
                    float[] buf = ArrayPool<float>.Shared.Rent(len);
                    try
                    {
                        fixed (float* s = buf)
                        {
                            float* dkc = s + gather + work, dvc = dkc + share;
                            Gather(b, kvh, s);
                            for (int g = 0; g < group; g++)
                            {
                                Head(b, kvh * group + g, s, dkc, dvc);
                                Add(b, kvh, dkc, dvc);
                            }
                        }
                    }
                    finally { ArrayPool<float>.Shared.Return(buf); }
                });
                return;
            }
            float[] shares = ArrayPool<float>.Shared.Rent(checked((int)(2 * share * batch * headsQ)));
            try
            {
                fixed (float* sh = shares)
                {
                    float* sh0 = sh;
                    int len = checked((int)(gather + work));
                    pool.Run(batch * headsQ, task =>
                    {
                        int b = task / headsQ, h = task % headsQ;
                        float[] buf = ArrayPool<float>.Shared.Rent(len);
                        try
                        {
                            fixed (float* s = buf)
                            {
                                Gather(b, h / group, s);
                                Head(b, h, s, sh0 + 2 * share * task, sh0 + 2 * share * task + share);
                            }
                        }
                        finally { ArrayPool<float>.Shared.Return(buf); }
                    });
                    pool.Run(batch * headsKv, task =>
                    {
                        int b = task / headsKv, kvh = task % headsKv;
                        for (int g = 0; g < group; g++)
                        {
                            float* part = sh0 + 2 * share * ((long)b * headsQ + kvh * group + g);
                            Add(b, kvh, part, part + share);
                        }
                    });
                }
            }
            finally { ArrayPool<float>.Shared.Return(shares); }
        }
    }
}
