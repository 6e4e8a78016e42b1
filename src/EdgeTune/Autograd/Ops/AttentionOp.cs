using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Causal scaled-dot-product self-attention with grouped-query heads: q: (B,T,Hq,D), k, v: (B,T,Hkv,D)
/// in any shape of those element counts (e.g. the (B·T, Hq·D) a projection makes) → y: q's shape.
/// Query head h reads kv head h / (Hq/Hkv); <c>window</c> &gt; 0 limits each position to the last
/// <c>window</c> keys. F32 runs the tiled <see cref="Tensors.Attention"/> kernel (on
/// <see cref="WorkerPool.Shared"/>: never call it from inside a pool task) and keeps the per-row
/// log-sum-exp (B,Hq,T) for its backward; F64 runs <see cref="AttentionReference"/>. Backward
/// accumulates dq, dk, dv (a side that needs none goes to scratch).
/// </summary>
public sealed class AttentionOp : TapeOp
{
    private readonly Variable _q, _k, _v;
    private readonly int _batch, _time, _headsQ, _headsKv, _dim, _window;
    private readonly double _scale;
    private Variable _y = null!;
    private float[]? _lse;

    public AttentionOp(Variable q, Variable k, Variable v, int batch, int time, int headsQ, int headsKv, int headDim,
        int window = 0, double? scale = null) : base("Attention", q, k, v)
    {
        (_q, _k, _v) = (q, k, v);
        (_batch, _time, _headsQ, _headsKv, _dim, _window) = (batch, time, headsQ, headsKv, headDim, window);
        _scale = scale ?? 1.0 / Math.Sqrt(headDim);
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "q", _q);
        OpChecks.SameDType(Name, _q, _k);
        OpChecks.SameDType(Name, _q, _v);
        long nq = (long)_batch * _time * _headsQ * _dim, nkv = (long)_batch * _time * _headsKv * _dim;
        foreach (var (v, n, h) in new[] { (_q, nq, "Hq"), (_k, nkv, "Hkv"), (_v, nkv, "Hkv") })
            if (v.ElementCount != n)
                throw new ShapeException($"{Name}: '{v.Name}' {v.Value.ShapeString} has {v.ElementCount} elements, expected B·T·{h}·D = {_batch}·{_time}·{(h == "Hq" ? _headsQ : _headsKv)}·{_dim} = {n}");
        _y = NewOutput(tape, _q.DType, _q.Shape, "attention");
        if (OpChecks.IsDouble(Name, _q.DType))
        {
            AttentionReference.Forward(_q.Value.ReadOnlySpan<double>(), _k.Value.ReadOnlySpan<double>(), _v.Value.ReadOnlySpan<double>(),
                _y.Value.Span<double>(), default, _batch, _time, _headsQ, _headsKv, _dim, _scale, _window);
        }
        else
        {
            _lse = NeedsBackward ? new float[_batch * _headsQ * _time] : null;
            Tensors.Attention.Forward(_q.Value.ReadOnlySpan<float>(), _k.Value.ReadOnlySpan<float>(), _v.Value.ReadOnlySpan<float>(),
                _y.Value.Span<float>(), _lse, _batch, _time, _headsQ, _headsKv, _dim, (float)_scale, _window);
        }
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad, dq = GradOf(_q), dk = GradOf(_k), dv = GradOf(_v);
        if (dy is null || (dq is null && dk is null && dv is null)) return;
        int nq = _batch * _time * _headsQ * _dim, nkv = _batch * _time * _headsKv * _dim;
        if (_q.DType == DType.F64)
        {
            Span<double> gq = dq is null ? new double[nq] : dq.Span<double>();
            Span<double> gk = dk is null ? new double[nkv] : dk.Span<double>(), gv = dv is null ? new double[nkv] : dv.Span<double>();
            AttentionReference.Backward(_q.Value.ReadOnlySpan<double>(), _k.Value.ReadOnlySpan<double>(), _v.Value.ReadOnlySpan<double>(),
                dy.ReadOnlySpan<double>(), gq, gk, gv, _batch, _time, _headsQ, _headsKv, _dim, _scale, _window);
        }
        else
        {
            Span<float> gq = dq is null ? new float[nq] : dq.Span<float>();
            Span<float> gk = dk is null ? new float[nkv] : dk.Span<float>(), gv = dv is null ? new float[nkv] : dv.Span<float>();
            Tensors.Attention.Backward(_q.Value.ReadOnlySpan<float>(), _k.Value.ReadOnlySpan<float>(), _v.Value.ReadOnlySpan<float>(),
                _y.Value.ReadOnlySpan<float>(), _lse, dy.ReadOnlySpan<float>(), gq, gk, gv,
                _batch, _time, _headsQ, _headsKv, _dim, (float)_scale, _window);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>
    /// Causal GQA self-attention. q: (B,T,Hq,D), k, v: (B,T,Hkv,D) (any shapes of those sizes) → q's
    /// shape. <paramref name="window"/> 0 = unlimited; <paramref name="scale"/> defaults to 1/√D.
    /// </summary>
    public static Variable Attention(this Tape tape, Variable q, Variable k, Variable v,
        int batch, int time, int headsQ, int headsKv, int headDim, int window = 0, double? scale = null) =>
        tape.Apply(new AttentionOp(q, k, v, batch, time, headsQ, headsKv, headDim, window, scale));
}
