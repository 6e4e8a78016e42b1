using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// y = x seen with another shape of the same element count; y's value is a view of x's storage
/// (no copy). x: any shape; y: <c>shape</c>. Backward: dx += dy (same elements, same order).
/// </summary>
public sealed class ReshapeOp : TapeOp
{
    private readonly Variable _x;
    private readonly int[] _shape;
    private Variable _y = null!;

    public ReshapeOp(Variable x, params int[] shape) : base("Reshape", x)
    {
        _x = x;
        _shape = (int[])shape.Clone();
    }

    protected internal override void Forward(Tape tape)
    {
        Tensor view;
        try { view = _x.Value.Reshape(_shape); }
        catch (ShapeException e) { throw new ShapeException($"{Name}: {e.Message}"); }
        if (NeedsBackward) OpChecks.Float(Name, "x", _x);
        _y = NewOutput(tape, view, "reshape");
    }

    protected internal override void Backward()
    {
        if (GradOf(_x) is not { } dx) return;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        // dx += dy
        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
            TensorPrimitives.Add(dx.Span<T>(), _y.Grad!.ReadOnlySpan<T>(), dx.Span<T>());
    }
}

public static partial class TapeOps
{
    /// <summary>x viewed with <paramref name="shape"/> (same element count; no copy).</summary>
    public static Variable Reshape(this Tape tape, Variable x, params int[] shape) => tape.Apply(new ReshapeOp(x, shape));
}
