using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Base of the one-input elementwise activations (<see cref="SiLUOp"/>, <see cref="GeluOp"/>):
/// y = f(x) over any shape; backward dx += f'(x)·dy reads the forward input x (kept alive by the
/// tape until this op's backward has run), so nothing is saved. F32 runs the fast kernel, F64 the
/// scalar reference.
/// </summary>
public abstract class PointwiseOp : TapeOp
{
    private readonly Variable _x;
    private Variable _y = null!;

    protected PointwiseOp(string name, Variable x) : base(name, x) => _x = x;

    /// <summary>y = f(x) in float (fast kernel).</summary>
    protected abstract void Forward(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>y = f(x) in double (reference).</summary>
    protected abstract void Forward(ReadOnlySpan<double> x, Span<double> y);

    /// <summary>dx += f'(x)·dy in float.</summary>
    protected abstract void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx);

    /// <summary>dx += f'(x)·dy in double.</summary>
    protected abstract void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dx);

    protected internal sealed override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, Name.ToLowerInvariant());
        if (OpChecks.IsDouble(Name, _x.DType)) Forward(_x.Value.ReadOnlySpan<double>(), _y.Value.Span<double>());
        else Forward(_x.Value.ReadOnlySpan<float>(), _y.Value.Span<float>());
    }

    protected internal sealed override void Backward()
    {
        if (_y.Grad is not { } dy || GradOf(_x) is not { } dx) return;
        if (_x.DType == DType.F64) Backward(_x.Value.ReadOnlySpan<double>(), dy.ReadOnlySpan<double>(), dx.Span<double>());
        else Backward(_x.Value.ReadOnlySpan<float>(), dy.ReadOnlySpan<float>(), dx.Span<float>());
    }
}
