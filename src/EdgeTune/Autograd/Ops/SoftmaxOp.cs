using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Softmax (or, with <c>log</c>, log-softmax) over the last dimension: x, y: (..., C), seen as rows
/// [R, C]. Backward reads the forward OUTPUT y (alive until this op's backward has run):
/// softmax dx += y ⊙ (dy − Σ dy⊙y); log-softmax dx += dy − exp(y)·Σ dy.
/// </summary>
public sealed class SoftmaxOp : TapeOp
{
    private readonly Variable _x;
    private readonly bool _log;
    private Variable _y = null!;
    private int _rows, _cols;

    public SoftmaxOp(Variable x, bool log = false) : base(log ? "LogSoftmax" : "Softmax", x)
    {
        _x = x;
        _log = log;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        (_rows, _cols) = OpChecks.Matrix(Name, "x", _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, _log ? "log_softmax" : "softmax");
        if (OpChecks.IsDouble(Name, _x.DType))
        {
            ReadOnlySpan<double> x = _x.Value.ReadOnlySpan<double>();
            Span<double> y = _y.Value.Span<double>();
            if (_log) SoftmaxReference.LogForward(x, y, _rows, _cols); else SoftmaxReference.Forward(x, y, _rows, _cols);
        }
        else
        {
            ReadOnlySpan<float> x = _x.Value.ReadOnlySpan<float>();
            Span<float> y = _y.Value.Span<float>();
            if (_log) Softmax.LogForward(x, y, _rows, _cols); else Softmax.Forward(x, y, _rows, _cols);
        }
    }

    protected internal override void Backward()
    {
        if (_y.Grad is not { } dyT || GradOf(_x) is not { } dxT) return;
        if (_x.DType == DType.F64)
        {
            ReadOnlySpan<double> y = _y.Value.ReadOnlySpan<double>(), dy = dyT.ReadOnlySpan<double>();
            Span<double> dx = dxT.Span<double>();
            if (_log) SoftmaxReference.LogBackward(y, dy, dx, _rows, _cols); else SoftmaxReference.Backward(y, dy, dx, _rows, _cols);
        }
        else
        {
            ReadOnlySpan<float> y = _y.Value.ReadOnlySpan<float>(), dy = dyT.ReadOnlySpan<float>();
            Span<float> dx = dxT.Span<float>();
            if (_log) Softmax.LogBackward(y, dy, dx, _rows, _cols); else Softmax.Backward(y, dy, dx, _rows, _cols);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Softmax over the last dimension.</summary>
    public static Variable Softmax(this Tape tape, Variable x) => tape.Apply(new SoftmaxOp(x));

    /// <summary>Log-softmax over the last dimension.</summary>
    public static Variable LogSoftmax(this Tape tape, Variable x) => tape.Apply(new SoftmaxOp(x, log: true));
}
