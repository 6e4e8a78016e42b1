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
        if (OpChecks.IsDouble(Name, a.DType))
            TensorPrimitives.Add(a.Value.ReadOnlySpan<double>(), b.Value.ReadOnlySpan<double>(), _y.Value.Span<double>());
        else Elementwise.Add(a.Value.ReadOnlySpan<float>(), b.Value.ReadOnlySpan<float>(), _y.Value.Span<float>()); // split across the pool when large
    }

    protected internal override void Backward()
    {
        Tensor dy = _y.Grad!;
        // da += dy; db += dy
        if (a.DType == DType.F64)
        {
            ReadOnlySpan<double> g = dy.ReadOnlySpan<double>();
            if (GradOf(a) is { } da) TensorPrimitives.Add(da.Span<double>(), g, da.Span<double>());
            if (GradOf(b) is { } db) TensorPrimitives.Add(db.Span<double>(), g, db.Span<double>());
        }
        else
        {
            ReadOnlySpan<float> g = dy.ReadOnlySpan<float>();
            if (GradOf(a) is { } da) Elementwise.Add(da.Span<float>(), g, da.Span<float>());
            if (GradOf(b) is { } db) Elementwise.Add(db.Span<float>(), g, db.Span<float>());
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Elementwise a + b (same shape and dtype).</summary>
    public static Variable Add(this Tape tape, Variable a, Variable b) => tape.Apply(new AddOp(a, b));
}
