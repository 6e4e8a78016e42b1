using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// Bidirectional (encoder) multi-head self-attention with a key padding mask: every query of sequence b sees every
/// key j of b with <c>mask[b·T + j] ≠ 0</c>; masked keys get −∞ before the softmax, so they receive no weight (BERT).
/// q, k, v, y: (B·T, H·D) row-major (any shape of that many elements). Each (sequence, head) builds its T×T
/// probability matrix; the op keeps them, (B,H,T,T), for backward (dq, dk, dv, each only when required).
/// F32 runs <see cref="MaskedAttention"/> (SIMD rows, one pool task per sequence and head); F64 runs
/// <see cref="MaskedAttentionReference"/>.
/// </summary>
public sealed class MaskedAttentionOp : TapeOp
{
    private readonly Variable _q, _k, _v;
    private readonly int[] _mask;
    private readonly int _batch, _time, _heads, _dim;
    private readonly double _scale;
    private Variable _y = null!;
    private float[]? _p32;
    private double[]? _p64;

    /// <param name="mask">[B·T] key mask (0 = padding), copied.</param>
    public MaskedAttentionOp(Variable q, Variable k, Variable v, ReadOnlySpan<int> mask, int batch, int time, int heads, int headDim, double? scale = null)
        : base("MaskedAttention", q, k, v)
    {
        (_q, _k, _v) = (q, k, v);
        _mask = mask.ToArray();
        (_batch, _time, _heads, _dim) = (batch, time, heads, headDim);
        _scale = scale ?? 1.0 / Math.Sqrt(headDim);
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "q", _q);
        OpChecks.SameDType(Name, _q, _k);
        OpChecks.SameDType(Name, _q, _v);
        MaskedAttention.Check(Name, _q.ElementCount, _k.ElementCount, _v.ElementCount, _mask, _batch, _time, _heads, _dim);
        _y = NewOutput(tape, _q.DType, _q.Shape, "masked_attention");
        long probs = (long)_batch * _heads * _time * _time;
        if (OpChecks.IsDouble(Name, _q.DType))
        {
            _p64 = new double[probs];
            MaskedAttentionReference.Forward(_q.Value.ReadOnlySpan<double>(), _k.Value.ReadOnlySpan<double>(), _v.Value.ReadOnlySpan<double>(),
                _mask, _y.Value.Span<double>(), _p64, _batch, _time, _heads, _dim, _scale);
        }
        else
        {
            _p32 = NeedsBackward ? new float[probs] : null;
            MaskedAttention.Forward(_q.Value.ReadOnlySpan<float>(), _k.Value.ReadOnlySpan<float>(), _v.Value.ReadOnlySpan<float>(),
                _mask, _y.Value.Span<float>(), _p32, _batch, _time, _heads, _dim, (float)_scale);
        }
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad, dq = GradOf(_q), dk = GradOf(_k), dv = GradOf(_v);
        if (dy is null || (dq is null && dk is null && dv is null)) return;
        long n = _q.ElementCount;
        if (_q.DType == DType.F64)
            MaskedAttentionReference.Backward(_q.Value.ReadOnlySpan<double>(), _k.Value.ReadOnlySpan<double>(), _v.Value.ReadOnlySpan<double>(),
                _p64!, dy.ReadOnlySpan<double>(), dq is null ? new double[n] : dq.Span<double>(), dk is null ? new double[n] : dk.Span<double>(),
                dv is null ? new double[n] : dv.Span<double>(), _batch, _time, _heads, _dim, _scale);
        else
            MaskedAttention.Backward(_q.Value.ReadOnlySpan<float>(), _k.Value.ReadOnlySpan<float>(), _v.Value.ReadOnlySpan<float>(),
                _p32!, dy.ReadOnlySpan<float>(), dq is null ? new float[n] : dq.Span<float>(), dk is null ? new float[n] : dk.Span<float>(),
                dv is null ? new float[n] : dv.Span<float>(), _batch, _time, _heads, _dim, (float)_scale);
    }

    public override void Dispose()
    {
        _p32 = null;
        _p64 = null;
    }
}

/// <summary>
/// The F32 kernel of <see cref="MaskedAttentionOp"/>: one <see cref="WorkerPool.Shared"/> task per (sequence, head)
/// gathers that head's q, k, v rows, computes each query's scores with SIMD dot products, the masked softmax and the
/// weighted sum of values; backward recomputes nothing (it reads the saved probabilities). Each task owns its head's
/// columns of every output, so results do not depend on the thread count. Tested against
/// <see cref="MaskedAttentionReference"/>.
/// </summary>
public static class MaskedAttention
{
    /// <exception cref="ShapeException">Sizes disagree, or a sequence attends to no key.</exception>
    public static void Check(string op, long q, long k, long v, ReadOnlySpan<int> mask, int batch, int time, int heads, int headDim)
    {
        if (batch <= 0 || time <= 0 || heads <= 0 || headDim <= 0)
            throw new ShapeException($"{op}: batch {batch}, time {time}, heads {heads} and head size {headDim} must be positive");
        long n = (long)batch * time * heads * headDim;
        if (q != n || k != n || v != n)
            throw new ShapeException($"{op}: q, k, v have {q}, {k}, {v} elements; B·T·H·D = {batch}·{time}·{heads}·{headDim} = {n} expected");
        if (mask.Length != batch * time)
            throw new ShapeException($"{op}: the mask has {mask.Length} entries; B·T = {batch * time} expected");
        for (int b = 0; b < batch; b++)
            if (!mask.Slice(b * time, time).ContainsAnyExcept(0))
                throw new ShapeException($"{op}: sequence {b} attends to no key (its mask is all zero)");
    }

    /// <summary>q, k, v, output: (B·T, H·D); probs: (B,H,T,T) written when not empty.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<int> mask,
        Span<float> output, Span<float> probs, int batch, int time, int heads, int headDim, float scale)
    {
        Check("MaskedAttention.Forward", q.Length, k.Length, v.Length, mask, batch, time, heads, headDim);
        unsafe
        {
            fixed (float* pq = q, pk = k, pv = v, po = output, pp = probs)
            fixed (int* pm = mask)
            {
                var args = new Args(pq, pk, pv, po, pp, pm, probs.IsEmpty, batch, time, heads, headDim);
                WorkerPool.Shared.Run(batch * heads, task => ForwardHead(args, task, scale));
            }
        }
    }

    /// <summary>Accumulates dq, dk, dv (B·T, H·D) from dOut and the probabilities <see cref="Forward"/> saved.</summary>
    public static void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> probs,
        ReadOnlySpan<float> dOut, Span<float> dq, Span<float> dk, Span<float> dv, int batch, int time, int heads, int headDim, float scale)
    {
        long n = (long)batch * time * heads * headDim;
        ShapeException.RequireLength("MaskedAttention.Backward", "probs", probs.Length, (long)batch * heads * time * time);
        foreach (var (len, role) in new[] { (dOut.Length, "dOut"), (dq.Length, "dq"), (dk.Length, "dk"), (dv.Length, "dv") })
            ShapeException.RequireLength("MaskedAttention.Backward", role, len, n);
        unsafe
        {
            fixed (float* pq = q, pk = k, pv = v, pp = probs, pd = dOut, gq = dq, gk = dk, gv = dv)
            {
                var args = new GradArgs(pq, pk, pv, pp, pd, gq, gk, gv, batch, time, heads, headDim);
                WorkerPool.Shared.Run(batch * heads, task => BackwardHead(args, task, scale));
            }
        }
    }

    private readonly unsafe struct Args(float* q, float* k, float* v, float* o, float* p, int* mask, bool noProbs, int batch, int time, int heads, int dim)
    {
        public readonly float* Q = q, K = k, V = v, O = o, P = p;
        public readonly int* Mask = mask;
        public readonly bool NoProbs = noProbs;
        public readonly int Batch = batch, Time = time, Heads = heads, Dim = dim;
    }

    private readonly unsafe struct GradArgs(float* q, float* k, float* v, float* p, float* dOut, float* dq, float* dk, float* dv, int batch, int time, int heads, int dim)
    {
        public readonly float* Q = q, K = k, V = v, P = p, DOut = dOut, DQ = dq, DK = dk, DV = dv;
        public readonly int Batch = batch, Time = time, Heads = heads, Dim = dim;
    }

    /// <summary>Copies head h's rows of sequence b out of an (B·T, H·D) matrix into [T, D].</summary>
    private static unsafe void Gather(float* src, float[] dst, int b, int h, int t, int heads, int d)
    {
        for (int i = 0; i < t; i++)
            new ReadOnlySpan<float>(src + ((long)(b * t + i) * heads + h) * d, d).CopyTo(dst.AsSpan(i * d, d));
    }

    private static unsafe void ForwardHead(Args a, int task, float scale)
    {
        int b = task / a.Heads, h = task % a.Heads, t = a.Time, d = a.Dim;
        float[] qh = new float[t * d], kh = new float[t * d], vh = new float[t * d], row = new float[t], acc = new float[d];
        Gather(a.Q, qh, b, h, t, a.Heads, d);
        Gather(a.K, kh, b, h, t, a.Heads, d);
        Gather(a.V, vh, b, h, t, a.Heads, d);
        int* mask = a.Mask + b * t;
        for (int i = 0; i < t; i++)
        {
            var qi = qh.AsSpan(i * d, d);
            float max = float.NegativeInfinity;
            for (int j = 0; j < t; j++)
            {
                row[j] = mask[j] == 0 ? float.NegativeInfinity : TensorPrimitives.Dot(qi, kh.AsSpan(j * d, d)) * scale;
                max = MathF.Max(max, row[j]);
            }
            TensorPrimitives.Subtract(row, max, row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
            Array.Clear(acc);
            for (int j = 0; j < t; j++)
                if (row[j] != 0f) TensorPrimitives.MultiplyAdd(vh.AsSpan(j * d, d), row[j], acc, acc);
            acc.AsSpan().CopyTo(new Span<float>(a.O + ((long)(b * t + i) * a.Heads + h) * d, d));
            if (!a.NoProbs) row.AsSpan().CopyTo(new Span<float>(a.P + ((long)task * t + i) * t, t));
        }
    }

    private static unsafe void BackwardHead(GradArgs a, int task, float scale)
    {
        int b = task / a.Heads, h = task % a.Heads, t = a.Time, d = a.Dim;
        float[] qh = new float[t * d], kh = new float[t * d], vh = new float[t * d], doh = new float[t * d];
        float[] gq = new float[t * d], gk = new float[t * d], gv = new float[t * d], ds = new float[t];
        Gather(a.Q, qh, b, h, t, a.Heads, d);
        Gather(a.K, kh, b, h, t, a.Heads, d);
        Gather(a.V, vh, b, h, t, a.Heads, d);
        Gather(a.DOut, doh, b, h, t, a.Heads, d);
        for (int i = 0; i < t; i++)
        {
            var p = new ReadOnlySpan<float>(a.P + ((long)task * t + i) * t, t);
            var doi = doh.AsSpan(i * d, d);
            // dP_ij = dO_i·v_j ; dS_ij = P_ij (dP_ij − Σ_j P_ij dP_ij)
            float rowDot = 0f;
            for (int j = 0; j < t; j++)
            {
                ds[j] = p[j] == 0f ? 0f : TensorPrimitives.Dot(doi, vh.AsSpan(j * d, d));
                rowDot += p[j] * ds[j];
            }
            var gqi = gq.AsSpan(i * d, d);
            var qi = qh.AsSpan(i * d, d);
            for (int j = 0; j < t; j++)
            {
                if (p[j] == 0f) continue;
                float s = p[j] * (ds[j] - rowDot) * scale;
                TensorPrimitives.MultiplyAdd(kh.AsSpan(j * d, d), s, gqi, gqi);
                TensorPrimitives.MultiplyAdd(qi, s, gk.AsSpan(j * d, d), gk.AsSpan(j * d, d));
                TensorPrimitives.MultiplyAdd(doi, p[j], gv.AsSpan(j * d, d), gv.AsSpan(j * d, d));
            }
        }
        for (int i = 0; i < t; i++)
        {
            long o = ((long)(b * t + i) * a.Heads + h) * d;
            foreach (var (src, dst) in new[] { (gq, (nint)a.DQ), (gk, (nint)a.DK), (gv, (nint)a.DV) })
            {
                var target = new Span<float>((float*)dst + o, d);
                TensorPrimitives.Add(target, src.AsSpan(i * d, d), target);
            }
        }
    }
}

/// <summary>
/// Plain scalar masked bidirectional attention, generic over the element type (gradient checks run it in double):
/// the definition <see cref="MaskedAttention"/> is tested against. Layouts as there.
/// </summary>
public static class MaskedAttentionReference
{
    /// <summary>q, k, v, output: (B·T, H·D); probs: (B,H,T,T) (written).</summary>
    public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<int> mask, Span<T> output, Span<T> probs,
        int batch, int time, int heads, int headDim, double scale) where T : IFloatingPointIeee754<T>
    {
        MaskedAttention.Check("MaskedAttentionReference.Forward", q.Length, k.Length, v.Length, mask, batch, time, heads, headDim);
        ShapeException.RequireLength("MaskedAttentionReference.Forward", "probs", probs.Length, (long)batch * heads * time * time);
        int w = heads * headDim;
        T sc = T.CreateChecked(scale);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < time; i++)
                {
                    var p = probs.Slice(((b * heads + h) * time + i) * time, time);
                    int qo = (b * time + i) * w + h * headDim;
                    T max = T.NegativeInfinity;
                    for (int j = 0; j < time; j++)
                    {
                        if (mask[b * time + j] == 0) { p[j] = T.NegativeInfinity; continue; }
                        int ko = (b * time + j) * w + h * headDim;
                        T s = T.Zero;
                        for (int c = 0; c < headDim; c++) s += q[qo + c] * k[ko + c];
                        p[j] = s * sc;
                        max = T.Max(max, p[j]);
                    }
                    T sum = T.Zero;
                    for (int j = 0; j < time; j++) { p[j] = T.Exp(p[j] - max); sum += p[j]; }
                    for (int j = 0; j < time; j++) p[j] /= sum;
                    for (int c = 0; c < headDim; c++)
                    {
                        T acc = T.Zero;
                        for (int j = 0; j < time; j++) acc += p[j] * v[(b * time + j) * w + h * headDim + c];
                        output[qo + c] = acc;
                    }
                }
    }

    /// <summary>Accumulates dq, dk, dv from dOut and the probabilities of <see cref="Forward{T}"/>.</summary>
    public static void Backward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> probs, ReadOnlySpan<T> dOut,
        Span<T> dq, Span<T> dk, Span<T> dv, int batch, int time, int heads, int headDim, double scale) where T : IFloatingPointIeee754<T>
    {
        int w = heads * headDim;
        T sc = T.CreateChecked(scale);
        var dp = new T[time];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < time; i++)
                {
                    var p = probs.Slice(((b * heads + h) * time + i) * time, time);
                    int qo = (b * time + i) * w + h * headDim;
                    T rowDot = T.Zero;
                    for (int j = 0; j < time; j++)
                    {
                        int vo = (b * time + j) * w + h * headDim;
                        T s = T.Zero;
                        for (int c = 0; c < headDim; c++) s += dOut[qo + c] * v[vo + c];
                        dp[j] = s;
                        rowDot += p[j] * s;
                    }
                    for (int j = 0; j < time; j++)
                    {
                        int ko = (b * time + j) * w + h * headDim;
                        T ds = p[j] * (dp[j] - rowDot) * sc;
                        for (int c = 0; c < headDim; c++)
                        {
                            dq[qo + c] += ds * k[ko + c];
                            dk[ko + c] += ds * q[qo + c];
                            dv[ko + c] += p[j] * dOut[qo + c];
                        }
                    }
                }
    }
}

public static partial class TapeOps
{
    /// <summary>Bidirectional multi-head attention of q, k, v (B·T, H·D) with key padding <paramref name="mask"/> [B·T]
    /// (0 = padding) → (B·T, H·D). <paramref name="scale"/> defaults to 1/√D.</summary>
    public static Variable MaskedAttention(this Tape tape, Variable q, Variable k, Variable v, int[] mask,
        int batch, int time, int heads, int headDim, double? scale = null) =>
        tape.Apply(new MaskedAttentionOp(q, k, v, mask, batch, time, heads, headDim, scale));
}
