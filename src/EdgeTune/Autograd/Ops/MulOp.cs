using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>y = a ⊙ b, elementwise over equal shapes. Keeps references to a and b (no copies).</summary>
public sealed class MulOp : TapeOp
{
    private readonly Variable a, b;

    public MulOp(Variable a, Variable b) : base("Mul", a, b)
    {
        this.a = a;
        this.b = b;
    }

    private Variable _y = null!;

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "a", a);
        OpChecks.SameDType(Name, a, b);
        OpChecks.SameShape(Name, a, b);
        _y = NewOutput(tape, a.DType, a.Shape, "mul");
        if (OpChecks.IsDouble(Name, a.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
            TensorPrimitives.Multiply(a.Value.ReadOnlySpan<T>(), b.Value.ReadOnlySpan<T>(), _y.Value.Span<T>());
    }

    protected internal override void Backward()
    {
        Tensor dy = _y.Grad!;
        if (a.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            // da += dy ⊙ b; db += dy ⊙ a
            ReadOnlySpan<T> g = dy.ReadOnlySpan<T>();
            if (GradOf(a) is { } da) TensorPrimitives.MultiplyAdd(g, b.Value.ReadOnlySpan<T>(), da.Span<T>(), da.Span<T>());
            if (GradOf(b) is { } db) TensorPrimitives.MultiplyAdd(g, a.Value.ReadOnlySpan<T>(), db.Span<T>(), db.Span<T>());
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Elementwise a ⊙ b (same shape and dtype).</summary>
    public static Variable Mul(this Tape tape, Variable a, Variable b) => tape.Apply(new MulOp(a, b));
}
