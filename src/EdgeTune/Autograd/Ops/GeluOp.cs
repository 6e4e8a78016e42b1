using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>y = gelu(x) elementwise (any shape), exact (erf) or tanh-approximated;
/// dx += dy·gelu'(x) of the same variant.</summary>
public sealed class GeluOp(Variable x, GeluApproximation approximation) : PointwiseOp("Gelu", x)
{
    protected override void Forward(ReadOnlySpan<float> x, Span<float> y) => Elementwise.Gelu(x, y, approximation);

    protected override void Forward(ReadOnlySpan<double> x, Span<double> y) => ElementwiseReference.Gelu(x, y, approximation);

    protected override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx) =>
        Elementwise.GeluBackward(x, dy, dx, approximation);

    protected override void Backward(ReadOnlySpan<double> x, ReadOnlySpan<double> dy, Span<double> dx) =>
        ElementwiseReference.GeluBackward(x, dy, dx, approximation);
}

public static partial class TapeOps
{
    /// <summary>GELU, elementwise; <paramref name="approximation"/> picks erf (exact) or tanh.</summary>
    public static Variable Gelu(this Tape tape, Variable x, GeluApproximation approximation = GeluApproximation.Exact) =>
        tape.Apply(new GeluOp(x, approximation));
}
