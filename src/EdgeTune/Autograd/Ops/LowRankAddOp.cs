using System.Buffers;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// z = y + s·h·Bᵀ: an output y (…, out) plus a scaled rank-r product of h (…, r) and B [out, r] — LoRA's update
/// added where it is made. One op instead of Scale, Linear and Add, so neither the (…, out) update nor its gradient
/// exists on the tape. Backward: dy += dz; dh += s·dz·B; dB += s·dzᵀ·h, each only when that input needs it.
/// F32 runs <see cref="Gemm"/>, F64 <see cref="GemmReference"/>. Keeps s·h (N×r) for dB. B is a linear weight whose
/// input is s·h: on a tape with <see cref="Tape.PerExample"/> naming B, backward hands s·h and dz to it instead of forming dB
/// (DP-SGD's per-example clipping), as <see cref="LinearOp"/> does.
/// </summary>
public sealed class LowRankAddOp : TapeOp
{
    private readonly Variable _y, _h, _b;
    private readonly double _scale;
    private Variable _z = null!;
    private int _n, _r, _out;
    private Tensor? _hs;
    private PerExampleLinearGradients? _perExample;

    public LowRankAddOp(Variable y, Variable h, Variable b, double scale) : base("LowRankAdd", y, h, b)
    {
        _y = y;
        _h = h;
        _b = b;
        _scale = scale;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "y", _y);
        OpChecks.SameDType(Name, _y, _h);
        OpChecks.SameDType(Name, _y, _b);
        OpChecks.Rank(Name, "B", _b, 2);
        (_out, _r) = (_b.Shape[0], _b.Shape[1]);
        if (_y.Value.Rank < 1 || _y.Shape[^1] != _out || _h.Value.Rank != _y.Value.Rank || _h.Shape[^1] != _r
            || !_h.Shape[..^1].SequenceEqual(_y.Shape[..^1]))
            throw new ShapeException($"{Name}: y '{_y.Name}' {_y.Value.ShapeString} and h '{_h.Name}' {_h.Value.ShapeString} must be (…, {_out}) and (…, {_r}) with the same leading dimensions for B '{_b.Name}' {_b.Value.ShapeString}");
        _n = checked((int)(_y.ElementCount / _out));
        _perExample = NeedsBackward && tape.PerExample is { } pe && pe.Captures(_b) ? pe : null;
        _z = NewOutput(tape, _y.DType, _y.Shape, "lowrank_add");
        _hs = Tensor.Zeros(_y.DType, [_n, _r], "scaled_h");
        if (_y.DType == DType.F64)
        {
            _y.Value.ReadOnlySpan<double>().CopyTo(_z.Value.Span<double>());
            TensorPrimitives.Multiply(_h.Value.ReadOnlySpan<double>(), _scale, _hs.Span<double>());
            GemmReference.ABt<double>(_hs.ReadOnlySpan<double>(), _b.Value.ReadOnlySpan<double>(), _z.Value.Span<double>(), _n, _r, _out, accumulate: true);
        }
        else
        {
            // z = (s·h)·Bᵀ, then z += y (one pass over y, as a copy followed by an accumulating GEMM would also take)
            TensorPrimitives.Multiply(_h.Value.ReadOnlySpan<float>(), (float)_scale, _hs.Span<float>());
            Gemm.ABt(_hs.ReadOnlySpan<float>(), _b.Value.ReadOnlySpan<float>(), _z.Value.Span<float>(), _n, _r, _out);
            Elementwise.Add(_z.Value.ReadOnlySpan<float>(), _y.Value.ReadOnlySpan<float>(), _z.Value.Span<float>());
        }
        if (!NeedsBackward || !_b.RequiresGrad) { _hs.Dispose(); _hs = null; }
    }

    protected internal override void Backward()
    {
        if (_z.Grad is not { } dzT) return;
        Tensor? dy = GradOf(_y), dh = GradOf(_h), db = _perExample is null ? GradOf(_b) : null;
        _perExample?.Record(_b, _hs!, dzT, _n, _r, _out);
        if (_y.DType == DType.F64)
        {
            var dz = dzT.ReadOnlySpan<double>();
            if (dy is not null) TensorPrimitives.Add(dy.Span<double>(), dz, dy.Span<double>());
            if (dh is not null)
            {
                var t = new double[_n * _r];
                GemmReference.AB<double>(dz, _b.Value.ReadOnlySpan<double>(), t, _n, _out, _r);
                TensorPrimitives.MultiplyAdd(t, _scale, dh.ReadOnlySpan<double>(), dh.Span<double>());
            }
            if (db is not null) GemmReference.AtB<double>(dz, _hs!.ReadOnlySpan<double>(), db.Span<double>(), _out, _n, _r, accumulate: true);
            return;
        }
        var g = dzT.ReadOnlySpan<float>();
        if (dy is not null) Elementwise.Add(dy.Span<float>(), g, dy.Span<float>());
        if (dh is not null)
        {
            float[] t = ArrayPool<float>.Shared.Rent(_n * _r);
            try
            {
                var ts = t.AsSpan(0, _n * _r);
                Gemm.AB(g, _b.Value.ReadOnlySpan<float>(), ts, _n, _out, _r);
                TensorPrimitives.MultiplyAdd(ts, (float)_scale, dh.ReadOnlySpan<float>(), dh.Span<float>());
            }
            finally { ArrayPool<float>.Shared.Return(t); }
        }
        if (db is not null) Gemm.AtB(g, _hs!.ReadOnlySpan<float>(), db.Span<float>(), _out, _n, _r, accumulate: true);
    }

    public override void Dispose()
    {
        _hs?.Dispose();
        _hs = null;
    }
}

public static partial class TapeOps
{
    /// <summary>y + s·h·Bᵀ with h (…, r) and B [out, r] (the LoRA update added in place of Scale, Linear and Add).</summary>
    public static Variable LowRankAdd(this Tape tape, Variable y, Variable h, Variable b, double scale) =>
        tape.Apply(new LowRankAddOp(y, h, b, scale));
}
