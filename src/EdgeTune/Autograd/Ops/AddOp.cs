using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>y = a + b, elementwise over equal shapes. a, b, y: any shape (same for all).</summary>
public sealed class AddOp : TapeOp
{
    private readonly Variable a, b;

    public AddOp(Variable a, Variable b) : base("Add", a, b)
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
        _y = NewOutput(tape, a.DType, a.Shape, "add");
        if (OpChecks.IsDouble(Name, a.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
            TensorPrimitives.Add(a.Value.ReadOnlySpan<T>(), b.Value.ReadOnlySpan<T>(), _y.Value.Span<T>());
    }

    protected internal override void Backward()
    {
        Tensor dy = _y.Grad!;
        if (a.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            // da += dy; db += dy
            ReadOnlySpan<T> g = dy.ReadOnlySpan<T>();
            if (GradOf(a) is { } da) TensorPrimitives.Add(da.Span<T>(), g, da.Span<T>());
            if (GradOf(b) is { } db) TensorPrimitives.Add(db.Span<T>(), g, db.Span<T>());
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Elementwise a + b (same shape and dtype).</summary>
    public static Variable Add(this Tape tape, Variable a, Variable b) => tape.Apply(new AddOp(a, b));
}
