using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// y = scale · Σ x over all elements, to a scalar: scale 1 is Sum, 1/count is Mean.
/// x: any shape; y: [] (rank 0). Backward: dx += scale · dy (broadcast).
/// </summary>
public sealed class SumOp : TapeOp
{
    private readonly Variable _x;
    private readonly bool _mean;
    private Variable _y = null!;

    public SumOp(Variable x, bool mean = false) : base(mean ? "Mean" : "Sum", x)
    {
        _x = x;
        _mean = mean;
    }

    private double Factor => _mean ? 1.0 / Math.Max(1, _x.ElementCount) : 1.0;

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        if (_mean && _x.ElementCount == 0)
            throw new ShapeException($"{Name}: '{_x.Name}' {_x.Value.ShapeString} is empty; its mean is undefined");
        _y = NewOutput(tape, _x.DType, [], _mean ? "mean" : "sum");
        if (OpChecks.IsDouble(Name, _x.DType))
            _y.Value.Span<double>()[0] = TensorPrimitives.Sum(_x.Value.ReadOnlySpan<double>()) * Factor;
        else
            _y.Value.Span<float>()[0] = (float)(TensorPrimitives.Sum(_x.Value.ReadOnlySpan<float>()) * Factor);
    }

    protected internal override void Backward()
    {
        if (GradOf(_x) is not { } dx) return;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            T g = _y.Grad!.ReadOnlySpan<T>()[0] * T.CreateChecked(Factor);
            TensorPrimitives.Add(dx.Span<T>(), g, dx.Span<T>());
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Σ x to a scalar.</summary>
    public static Variable Sum(this Tape tape, Variable x) => tape.Apply(new SumOp(x));

    /// <summary>Mean of x to a scalar.</summary>
    public static Variable Mean(this Tape tape, Variable x) => tape.Apply(new SumOp(x, mean: true));
}
