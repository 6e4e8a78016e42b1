using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// A column range of a row matrix, copied: x (N, W) → y (N, count) = x[:, start..start+count). Splits a fused
/// projection (Phi-3's qkv_proj, gate_up_proj) into its parts. Backward accumulates dy into dx's columns.
/// </summary>
public sealed class ColumnsOp : TapeOp
{
    private readonly Variable _x;
    private readonly int _start, _count;
    private Variable _y = null!;
    private int _rows, _width;

    public ColumnsOp(Variable x, int start, int count) : base("Columns", x)
    {
        _x = x;
        (_start, _count) = (start, count);
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        (_rows, _width) = OpChecks.Matrix(Name, "x", _x);
        if (_start < 0 || _count <= 0 || _start + _count > _width)
            throw new ShapeException($"{Name}: columns [{_start}, {_start + _count}) are outside x's width {_width}");
        _y = NewOutput(tape, _x.DType, [_rows, _count], "columns");
        if (_x.DType == DType.F64) Copy(_x.Value.ReadOnlySpan<double>(), _y.Value.Span<double>(), backward: false);
        else Copy(_x.Value.ReadOnlySpan<float>(), _y.Value.Span<float>(), backward: false);
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad, dx = GradOf(_x);
        if (dy is null || dx is null) return;
        if (_x.DType == DType.F64) Copy(dy.ReadOnlySpan<double>(), dx.Span<double>(), backward: true);
        else Copy(dy.ReadOnlySpan<float>(), dx.Span<float>(), backward: true);
    }

    // forward: y[r, :] = x[r, start..]; backward: dx[r, start..] += dy[r, :]
    private void Copy<T>(ReadOnlySpan<T> src, Span<T> dst, bool backward) where T : unmanaged, System.Numerics.INumber<T>
    {
        for (int r = 0; r < _rows; r++)
        {
            if (!backward) src.Slice(r * _width + _start, _count).CopyTo(dst.Slice(r * _count, _count));
            else
            {
                var d = dst.Slice(r * _width + _start, _count);
                var s = src.Slice(r * _count, _count);
                for (int i = 0; i < _count; i++) d[i] += s[i];
            }
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Columns [start, start+count) of x (N, W) → (N, count).</summary>
    public static Variable Columns(this Tape tape, Variable x, int start, int count) => tape.Apply(new ColumnsOp(x, start, count));
}
