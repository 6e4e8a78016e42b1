using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>y = s · x for a constant scalar s. x, y: any shape.</summary>
public sealed class ScaleOp : TapeOp
{
    private readonly Variable x;

    public ScaleOp(Variable x, double scale) : base("Scale", x)
    {
        this.x = x;
        Scale = scale;
    }

    private Variable _y = null!;

    public double Scale { get; }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", x);
        _y = NewOutput(tape, x.DType, x.Shape, "scale");
        if (OpChecks.IsDouble(Name, x.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
            TensorPrimitives.Multiply(x.Value.ReadOnlySpan<T>(), T.CreateChecked(Scale), _y.Value.Span<T>());
    }

    protected internal override void Backward()
    {
        if (GradOf(x) is not { } dx) return;
        Tensor dy = _y.Grad!;
        if (x.DType == DType.F64) Run<double>(); else Run<float>();

        // dx += s · dy
        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T> =>
            TensorPrimitives.MultiplyAdd(dy.ReadOnlySpan<T>(), T.CreateChecked(Scale), dx.Span<T>(), dx.Span<T>());
    }
}

public static partial class TapeOps
{
    /// <summary>s · x.</summary>
    public static Variable Scale(this Tape tape, Variable x, double s) => tape.Apply(new ScaleOp(x, s));
}
