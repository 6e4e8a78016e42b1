using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Rotary position embedding, out of place: y = R(θ)·x with x, y: [T, H, D] or [B, T, H, D] (the
/// layout of <see cref="Tensors.Rope"/>, a head-split projection). Row t of every batch has position
/// pos0 + t, or positions[t] (positions: [T], shared by the batches, or [B·T]). The first
/// <see cref="RopeTable.RotaryDim"/> channels of each head rotate per <see cref="RopeStyle"/>; the
/// rest pass through. F32 reads the table's cached cos/sin; F64 runs <see cref="RopeReference"/>,
/// which recomputes the angles in double from the table's inverse frequencies. Backward
/// accumulates the inverse rotation dx += R(−θ)·dy.
/// </summary>
public sealed class RopeOp : TapeOp
{
    private readonly Variable _x;
    private readonly RopeTable _table;
    private readonly RopeStyle _style;
    private readonly int _pos0;
    private readonly int[]? _positions;
    private Variable _y = null!;
    private int _batch, _time, _heads, _dim;

    /// <param name="positions">Null for pos0 + t; else [T] or [B·T] positions (copied).</param>
    public RopeOp(Variable x, RopeTable table, RopeStyle style, int pos0 = 0, int[]? positions = null) : base("Rope", x)
    {
        ArgumentNullException.ThrowIfNull(table);
        _x = x;
        _table = table;
        _style = style;
        _pos0 = pos0;
        _positions = positions is null ? null : (int[])positions.Clone();
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        var s = _x.Shape;
        if (s.Length is not (3 or 4))
            throw new ShapeException($"{Name}: x '{_x.Name}' {_x.Value.ShapeString} must be [T, H, D] or [B, T, H, D]");
        (_batch, _time, _heads, _dim) = s.Length == 4 ? (s[0], s[1], s[2], s[3]) : (1, s[0], s[1], s[2]);
        if (_positions is not null && _positions.Length != _time && _positions.Length != _batch * _time)
            throw new ShapeException($"{Name}: {_positions.Length} positions for x '{_x.Name}' {_x.Value.ShapeString}; expected T = {_time} or B·T = {_batch * _time}");
        _y = NewOutput(tape, _x.DType, s, "rope");
        int n = _time * _heads * _dim;
        if (OpChecks.IsDouble(Name, _x.DType))
        {
            if (_table.AttentionFactor != 1.0)
                throw new NotSupportedException($"{Name}: the F64 reference has no attention factor (the table's is {_table.AttentionFactor})");
            _x.Value.ReadOnlySpan<double>().CopyTo(_y.Value.Span<double>());
            Span<double> y = _y.Value.Span<double>();
            for (int b = 0; b < _batch; b++)
                RopeReference.Forward(y.Slice(b * n, n), _time, _heads, _dim, PositionsOf(b), _table.InverseFrequencyValues, _style);
        }
        else
        {
            _x.Value.ReadOnlySpan<float>().CopyTo(_y.Value.Span<float>());
            Span<float> y = _y.Value.Span<float>();
            for (int b = 0; b < _batch; b++)
            {
                if (_positions is null) Tensors.Rope.Forward(y.Slice(b * n, n), _time, _heads, _dim, _pos0, _table, _style);
                else Tensors.Rope.Forward(y.Slice(b * n, n), _time, _heads, _dim, PositionsOf(b), _table, _style);
            }
        }
    }

    protected internal override void Backward()
    {
        if (_y.Grad is not { } dyT || GradOf(_x) is not { } dxT) return;
        int n = _time * _heads * _dim;
        for (int b = 0; b < _batch; b++)
        {
            if (_x.DType == DType.F64)
                RopeReference.Backward(dyT.ReadOnlySpan<double>().Slice(b * n, n), dxT.Span<double>().Slice(b * n, n), _time, _heads, _dim,
                    PositionsOf(b), _table.InverseFrequencyValues, _style);
            else if (_positions is null)
                Tensors.Rope.Backward(dyT.ReadOnlySpan<float>().Slice(b * n, n), dxT.Span<float>().Slice(b * n, n), _time, _heads, _dim, _pos0, _table, _style);
            else
                Tensors.Rope.Backward(dyT.ReadOnlySpan<float>().Slice(b * n, n), dxT.Span<float>().Slice(b * n, n), _time, _heads, _dim,
                    PositionsOf(b), _table, _style);
        }
    }

    // the [T] positions of batch b (pos0 + t when none were given); the reference checks none against the table
    private ReadOnlySpan<int> PositionsOf(int b)
    {
        if (_positions is not null) return _positions.Length == _time ? _positions : _positions.AsSpan(b * _time, _time);
        var p = new int[_time];
        for (int t = 0; t < _time; t++) p[t] = checked(_pos0 + t);
        return p;
    }
}

public static partial class TapeOps
{
    /// <summary>RoPE on x [T, H, D] or [B, T, H, D], row t at position pos0 + t; returns a new tensor.</summary>
    public static Variable Rope(this Tape tape, Variable x, RopeTable table, RopeStyle style, int pos0 = 0) =>
        tape.Apply(new RopeOp(x, table, style, pos0));

    /// <summary>RoPE on x [T, H, D] or [B, T, H, D] at explicit positions ([T] shared by batches, or [B·T]).</summary>
    public static Variable Rope(this Tape tape, Variable x, RopeTable table, RopeStyle style, int[] positions) =>
        tape.Apply(new RopeOp(x, table, style, positions: positions));
}
