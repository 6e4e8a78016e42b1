using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// Mean squared error, loss = (1/n) Σ (pred − target)², to a scalar. pred, target: same shape.
/// Keeps the difference d = pred − target for backward: dpred += (2/n)·d·dloss, dtarget −= the same.
/// A NaN or infinite loss raises <see cref="NonFiniteException"/> naming this op.
/// </summary>
public sealed class MseLossOp : TapeOp
{
    private readonly Variable _pred, _target;
    private Variable _loss = null!;
    private Tensor? _diff;

    public MseLossOp(Variable pred, Variable target) : base("MseLoss", pred, target)
    {
        _pred = pred;
        _target = target;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "pred", _pred);
        OpChecks.SameDType(Name, _pred, _target);
        OpChecks.SameShape(Name, _pred, _target);
        if (_pred.ElementCount == 0)
            throw new ShapeException($"{Name}: '{_pred.Name}' {_pred.Value.ShapeString} is empty; the mean is undefined");
        _loss = NewOutput(tape, _pred.DType, [], "mse");
        _diff = Tensor.Zeros(_pred.DType, _pred.Shape.ToArray(), "mse.diff");
        double value = OpChecks.IsDouble(Name, _pred.DType) ? Run<double>() : Run<float>();
        if (!NeedsBackward) { _diff.Dispose(); _diff = null; }
        OpChecks.FiniteLoss(Name, _loss, value);

        double Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            Span<T> d = _diff.Span<T>();
            TensorPrimitives.Subtract(_pred.Value.ReadOnlySpan<T>(), _target.Value.ReadOnlySpan<T>(), d);
            T loss = TensorPrimitives.SumOfSquares<T>(d) / T.CreateChecked(d.Length);
            _loss.Value.Span<T>()[0] = loss;
            return double.CreateChecked(loss);
        }
    }

    protected internal override void Backward()
    {
        Tensor? dp = GradOf(_pred), dt = GradOf(_target);
        if (dp is null && dt is null) return;
        if (_pred.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> d = _diff!.ReadOnlySpan<T>();
            T g = _loss.Grad!.ReadOnlySpan<T>()[0] * T.CreateChecked(2.0) / T.CreateChecked(d.Length);
            if (dp is not null) TensorPrimitives.MultiplyAdd(d, g, dp.Span<T>(), dp.Span<T>());
            if (dt is not null) TensorPrimitives.MultiplyAdd(d, -g, dt.Span<T>(), dt.Span<T>());
        }
    }

    public override void Dispose()
    {
        _diff?.Dispose();
        _diff = null;
    }
}

public static partial class TapeOps
{
    /// <summary>Mean of (pred − target)² to a scalar.</summary>
    public static Variable MseLoss(this Tape tape, Variable pred, Variable target) => tape.Apply(new MseLossOp(pred, target));
}
