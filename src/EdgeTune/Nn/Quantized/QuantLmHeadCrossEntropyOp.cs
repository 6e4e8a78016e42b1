using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd.Internal;
using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn.Quantized;

/// <summary>
/// <see cref="LmHeadCrossEntropyOp"/> over a frozen quantized head W [V, C] (QLoRA with a quantized tied
/// embedding): the mean over counted rows of −log softmax(x·Wᵀ)[target], x: (..., C) seen as rows [N, C].
/// Runs <see cref="QuantLmHead"/>: logits are made chunk by chunk from the quantized rows, never in full, and
/// no float copy of W exists. Keeps each row's log-sum-exp [N]; on a recording tape the forward also makes the
/// input gradient in the same pass (N×C floats kept), so backward is dx += scale·that (W is never trained). F32 only.
/// </summary>
public sealed class QuantLmHeadCrossEntropyOp : TapeOp
{
    private readonly Variable _x;
    private readonly QuantizedMatrix _w;
    private readonly int[] _targets;
    private readonly int _chunk;
    private Variable _loss = null!;
    private int _rows, _count;
    private float[] _lse = [];
    private Tensor? _inputGrad;

    /// <param name="targets">[N] target ids, copied.</param>
    public QuantLmHeadCrossEntropyOp(Variable x, QuantizedMatrix w, ReadOnlySpan<int> targets, int chunk = CrossEntropy.DefaultChunk)
        : base("QuantLmHeadCrossEntropy", x)
    {
        ArgumentNullException.ThrowIfNull(w);
        _x = x;
        _w = w;
        _targets = targets.ToArray();
        _chunk = chunk;
    }

    protected internal override void Forward(Tape tape)
    {
        if (_x.DType != DType.F32)
            throw new ShapeException($"{Name}: x '{_x.Name}' is {_x.DType}{_x.Value.ShapeString}; a quantized head ('{_w.Name}') computes in F32 only");
        (_rows, int channels) = OpChecks.Matrix(Name, "x", _x);
        if (channels != _w.Cols)
            throw new ShapeException($"{Name}: head '{_w.Name}' {_w.Format.Info().Name}[{_w.Rows}, {_w.Cols}] must be [V, {channels}] for x '{_x.Name}' {_x.Value.ShapeString}");
        if (_targets.Length != _rows)
            throw new ShapeException($"{Name}: {_targets.Length} targets for x '{_x.Name}' {_x.Value.ShapeString}; expected N = {_rows}");
        _loss = NewOutput(tape, DType.F32, [], "lm_head_cross_entropy");
        _lse = new float[_rows];
        double sum;
        try
        {
            if (NeedsBackward) _inputGrad = Tensor.Zeros(DType.F32, [_rows, channels], "lm_head_input_grad");
            (sum, _count) = QuantLmHead.Forward(_x.Value.ReadOnlySpan<float>(), _w, _targets, _lse, _rows, _chunk,
                inputGrad: _inputGrad is null ? default : _inputGrad.Span<float>());
        }
        catch (ArithmeticException e) when (e is not NonFiniteException)
        {
            throw OpChecks.NonFiniteLogits(Name, _x);
        }
        OpChecks.SetMeanLoss(Name, _loss, sum, _count);
    }

    protected internal override void Backward()
    {
        if (_loss.Grad is not { } dl || GradOf(_x) is not { } dx || _count == 0) return;
        float s = dl.ReadOnlySpan<float>()[0] / _count;
        if (_inputGrad is not null)
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(_inputGrad.ReadOnlySpan<float>(), s, dx.ReadOnlySpan<float>(), dx.Span<float>());
        else QuantLmHead.Backward(_x.Value.ReadOnlySpan<float>(), _w, _targets, _lse, dx.Span<float>(), _rows, s, _chunk);
    }

    public override void Dispose()
    {
        _inputGrad?.Dispose();
        _inputGrad = null;
    }
}

public static partial class QuantTapeOps
{
    /// <summary>Mean cross-entropy of the logits x·Wᵀ (never materialised) against targets [N]; W: a frozen quantized [V, C].</summary>
    public static Variable LmHeadCrossEntropy(this Tape tape, Variable x, QuantizedMatrix w, int[] targets, int chunk = Tensors.CrossEntropy.DefaultChunk) =>
        tape.Apply(new QuantLmHeadCrossEntropyOp(x, w, targets, chunk));
}
