using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Cross-entropy of logits (..., V), seen as rows [N, V], against N integer targets, to a scalar:
/// the mean of −log softmax(logits)[target] over the rows whose target is not
/// <see cref="CrossEntropy.IgnoreIndex"/> (0 when every row is ignored). Keeps each row's
/// log-sum-exp [N]; backward: dlogits += (softmax − onehot)·dloss/count, counted rows only. A target
/// outside [0, V) raises <see cref="ShapeException"/>; NaN or Inf logits or loss raise
/// <see cref="NonFiniteException"/> naming this op.
/// </summary>
public sealed class CrossEntropyOp : TapeOp
{
    private readonly Variable _logits;
    private readonly int[] _targets;
    private Variable _loss = null!;
    private int _rows, _vocab, _count;
    private float[]? _lse32;
    private double[]? _lse64;

    /// <param name="targets">[N] target ids, copied.</param>
    public CrossEntropyOp(Variable logits, ReadOnlySpan<int> targets) : base("CrossEntropy", logits)
    {
        _logits = logits;
        _targets = targets.ToArray();
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "logits", _logits);
        (_rows, _vocab) = OpChecks.Matrix(Name, "logits", _logits);
        if (_targets.Length != _rows)
            throw new ShapeException($"{Name}: {_targets.Length} targets for logits '{_logits.Name}' {_logits.Value.ShapeString}; expected N = {_rows}");
        _loss = NewOutput(tape, _logits.DType, [], "cross_entropy");
        bool f64 = OpChecks.IsDouble(Name, _logits.DType);
        double sum;
        try
        {
            if (f64)
            {
                _lse64 = new double[_rows];
                (sum, _count) = CrossEntropyReference.Forward(_logits.Value.ReadOnlySpan<double>(), _targets, _lse64, _rows, _vocab);
            }
            else
            {
                _lse32 = new float[_rows];
                (sum, _count) = CrossEntropy.Forward(_logits.Value.ReadOnlySpan<float>(), _targets, _lse32, _rows, _vocab);
            }
        }
        catch (ArithmeticException e) when (e is not NonFiniteException)
        {
            throw OpChecks.NonFiniteLogits(Name, _logits);
        }
        OpChecks.SetMeanLoss(Name, _loss, sum, _count);
    }

    protected internal override void Backward()
    {
        if (_loss.Grad is not { } dl || GradOf(_logits) is not { } dx || _count == 0) return;
        if (_logits.DType == DType.F64)
        {
            double scale = dl.ReadOnlySpan<double>()[0] / _count;
            CrossEntropyReference.Backward(_logits.Value.ReadOnlySpan<double>(), _targets, _lse64, dx.Span<double>(), _rows, _vocab, scale);
        }
        else
        {
            float scale = dl.ReadOnlySpan<float>()[0] / _count;
            CrossEntropy.Backward(_logits.Value.ReadOnlySpan<float>(), _targets, _lse32, dx.Span<float>(), _rows, _vocab, scale);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Mean cross-entropy of logits (..., V) against targets [N] (−100 ignores a row).</summary>
    public static Variable CrossEntropy(this Tape tape, Variable logits, int[] targets) => tape.Apply(new CrossEntropyOp(logits, targets));

    /// <summary>Mean cross-entropy of logits (..., V) against an I32 tensor of N targets.</summary>
    public static Variable CrossEntropy(this Tape tape, Variable logits, Tensor targets) =>
        tape.Apply(new CrossEntropyOp(logits, OpChecks.Ids("CrossEntropy", "targets", targets)));
}
