using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>y = x·σ(x) elementwise (any shape); dx += dy·σ(x)(1 + x(1 − σ(x))).</summary>
public sealed class SiLUOp(Variable x) : PointwiseOp("SiLU", x)
{
    protected override void Forward(ReadOnlySpan<float> x, Span<float> y) => Elementwise.SiLU(x, y);

    protected override void Forward(ReadOnlySpan<double> x, Span<double> y) => ElementwiseReference.SiLU(x, y);

    protected override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) => Elementwise.SiLUBackward(x, dy, dx);

    protected override void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dx) => ElementwiseReference.SiLUBackward(x, dy, dx);
}

public static partial class TapeOps
{
    /// <summary>SiLU (swish) x·σ(x), elementwise.</summary>
    public static Variable SiLU(this Tape tape, Variable x) => tape.Apply(new SiLUOp(x));
}
