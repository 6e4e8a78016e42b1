using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// y[n, c] = x[n, c] · s[c] (+ b[c]): a per-channel scale broadcast over every leading dimension, with an
/// optional per-channel bias. x, y: (..., C); s, b: (C).
/// </summary>
/// <remarks>Backward: dx += dy ⊙ s; ds[c] += Σ_n dy[n, c]·x[n, c]; db[c] += Σ_n dy[n, c]. Keeps references
/// to x and s (no copies).</remarks>
public sealed class ChannelScaleOp : TapeOp
{
    private readonly Variable _x, _s;
    private readonly Variable? _b;
    private Variable _y = null!;
    private int _rows, _c;

    public ChannelScaleOp(Variable x, Variable s, Variable? b = null) : base("ChannelScale", x, s, b)
    {
        _x = x;
        _s = s;
        _b = b;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        if (_x.Value.Rank < 1) throw new ShapeException($"{Name}: x '{_x.Name}' {_x.Value.ShapeString} must have a channel dimension");
        _c = _x.Shape[^1];
        _rows = checked((int)(_x.ElementCount / Math.Max(1, _c)));
        OpChecks.Vector(Name, "scale", _s, _c, _x);
        if (_b is not null) OpChecks.Vector(Name, "bias", _b, _c, _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, "channel_scale");
        if (OpChecks.IsDouble(Name, _x.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> x = _x.Value.ReadOnlySpan<T>(), s = _s.Value.ReadOnlySpan<T>();
            Span<T> y = _y.Value.Span<T>();
            for (int r = 0; r < _rows; r++)
            {
                var yr = y.Slice(r * _c, _c);
                System.Numerics.Tensors.TensorPrimitives.Multiply(x.Slice(r * _c, _c), s, yr);
                if (_b is not null) System.Numerics.Tensors.TensorPrimitives.Add(yr, _b.Value.ReadOnlySpan<T>(), yr);
            }
        }
    }

    protected internal override void Backward()
    {
        Tensor dyT = _y.Grad!;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> dy = dyT.ReadOnlySpan<T>(), x = _x.Value.ReadOnlySpan<T>(), s = _s.Value.ReadOnlySpan<T>();
            Span<T> dx = GradOf(_x) is { } gx ? gx.Span<T>() : default;
            Span<T> ds = GradOf(_s) is { } gs ? gs.Span<T>() : default;
            Span<T> db = GradOf(_b) is { } gb ? gb.Span<T>() : default;
            for (int r = 0; r < _rows; r++)
            {
                var g = dy.Slice(r * _c, _c);
                if (!dx.IsEmpty) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g, s, dx.Slice(r * _c, _c), dx.Slice(r * _c, _c));
                if (!ds.IsEmpty) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g, x.Slice(r * _c, _c), ds, ds);
                if (!db.IsEmpty) System.Numerics.Tensors.TensorPrimitives.Add(db, g, db);
            }
        }
    }
}

public static partial class TapeOps
{
    /// <summary>x ⊙ s (+ b) with s, b of the channel (last) dimension, broadcast over the rest.</summary>
    public static Variable ChannelScale(this Tape tape, Variable x, Variable s, Variable? b = null) => tape.Apply(new ChannelScaleOp(x, s, b));
}
