using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// The LM head fused with cross-entropy, to a scalar: the mean over counted rows of
/// −log softmax(x·Wᵀ)[target], with x: (..., C) seen as rows [N, C], W: [V, C] and N targets
/// (<see cref="CrossEntropy.IgnoreIndex"/> skips a row; 0 when every row is ignored). The F32 path
/// builds the logits <c>chunk</c> vocabulary rows at a time (<see cref="CrossEntropy.LmHeadForward{TW}"/>),
/// so the (N, V) logits never exist; W may be a frozen F16/BF16 tensor kept as stored, or a
/// trainable F32 one (e.g. an embedding table tied to the head). F64 runs the reference. Keeps each
/// row's log-sum-exp [N]; backward recomputes the logits chunk by chunk and accumulates dx and, when
/// W requires a gradient, dW. A frozen W on a recording tape (LoRA) instead has its F32 forward make the
/// input gradient in the same pass (N×C floats kept for backward), so backward is dx += scale·that and the
/// logits are made once, not twice. NaN or Inf logits or loss raise <see cref="NonFiniteException"/>.
/// </summary>
public sealed class LmHeadCrossEntropyOp : TapeOp
{
    private readonly Variable _x, _w;
    private readonly int[] _targets;
    private readonly int _chunk;
    private Variable _loss = null!;
    private int _rows, _channels, _vocab, _count;
    private float[]? _lse32;
    private double[]? _lse64;
    private Tensor? _inputGrad;

    /// <param name="targets">[N] target ids, copied.</param>
    public LmHeadCrossEntropyOp(Variable x, Variable w, ReadOnlySpan<int> targets, int chunk = CrossEntropy.DefaultChunk)
        : base("LmHeadCrossEntropy", x, w)
    {
        _x = x;
        _w = w;
        _targets = targets.ToArray();
        _chunk = chunk;
    }

    protected internal override void Forward(Tape tape)
    {
        (_rows, _channels, _vocab, bool f64) = OpChecks.LmHead(Name, _x, _w, _targets.Length);
        _loss = NewOutput(tape, _x.DType, [], "lm_head_cross_entropy");
        double sum;
        try
        {
            if (f64)
            {
                _lse64 = new double[_rows];
                (sum, _count) = CrossEntropyReference.LmHeadForward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _targets, _lse64,
                    _rows, _channels, _vocab);
            }
            else
            {
                _lse32 = new float[_rows];
                var x = _x.Value.ReadOnlySpan<float>();
                // A frozen head: the input gradient is made with the loss (one pass over the logits instead of two).
                if (NeedsBackward && _x.RequiresGrad && !_w.RequiresGrad) _inputGrad = Tensor.Zeros(DType.F32, [_rows, _channels], "lm_head_input_grad");
                Span<float> g = _inputGrad is null ? default : _inputGrad.Span<float>();
                (sum, _count) = _w.DType switch
                {
                    DType.F32 => CrossEntropy.LmHeadForward(x, _w.Value.ReadOnlySpan<float>(), _targets, _lse32, _rows, _channels, _vocab, _chunk, inputGrad: g),
                    DType.F16 => CrossEntropy.LmHeadForward(x, _w.Value.ReadOnlySpan<Half>(), _targets, _lse32, _rows, _channels, _vocab, _chunk, inputGrad: g),
                    _ => CrossEntropy.LmHeadForward(x, _w.Value.ReadOnlySpan<ushort>(), _targets, _lse32, _rows, _channels, _vocab, _chunk, inputGrad: g),
                };
            }
        }
        catch (ArithmeticException e) when (e is not NonFiniteException)
        {
            throw OpChecks.NonFiniteLogits(Name, _x);
        }
        OpChecks.SetMeanLoss(Name, _loss, sum, _count);
    }

    protected internal override void Backward()
    {
        Tensor? dl = _loss.Grad, dx = GradOf(_x), dw = GradOf(_w);
        if (dl is null || (dx is null && dw is null) || _count == 0) return;
        int n = _rows * _channels;
        if (_x.DType == DType.F64)
        {
            double scale = dl.ReadOnlySpan<double>()[0] / _count;
            CrossEntropyReference.LmHeadBackward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _targets, _lse64,
                dx is null ? new double[n] : dx.Span<double>(), dw is null ? default : dw.Span<double>(), _rows, _channels, _vocab, scale);
            return;
        }
        float s = dl.ReadOnlySpan<float>()[0] / _count;
        if (_inputGrad is not null)
        {
            if (dx is not null) TensorPrimitives.MultiplyAdd(_inputGrad.ReadOnlySpan<float>(), s, dx.ReadOnlySpan<float>(), dx.Span<float>());
            return;
        }
        var x = _x.Value.ReadOnlySpan<float>();
        Span<float> gx = dx is null ? new float[n] : dx.Span<float>(), gw = dw is null ? default : dw.Span<float>();
        switch (_w.DType)
        {
            case DType.F32: CrossEntropy.LmHeadBackward(x, _w.Value.ReadOnlySpan<float>(), _targets, _lse32, gx, gw, _rows, _channels, _vocab, s, _chunk); break;
            case DType.F16: CrossEntropy.LmHeadBackward(x, _w.Value.ReadOnlySpan<Half>(), _targets, _lse32, gx, gw, _rows, _channels, _vocab, s, _chunk); break;
            default: CrossEntropy.LmHeadBackward(x, _w.Value.ReadOnlySpan<ushort>(), _targets, _lse32, gx, gw, _rows, _channels, _vocab, s, _chunk); break;
        }
    }

    public override void Dispose()
    {
        _inputGrad?.Dispose();
        _inputGrad = null;
    }
}

public static partial class TapeOps
{
    /// <summary>Mean cross-entropy of the logits x·Wᵀ (never materialised) against targets [N]; W: [V, C].</summary>
    public static Variable LmHeadCrossEntropy(this Tape tape, Variable x, Variable w, int[] targets, int chunk = Tensors.CrossEntropy.DefaultChunk) =>
        tape.Apply(new LmHeadCrossEntropyOp(x, w, targets, chunk));

    /// <summary>Fused LM head + cross-entropy through a weight parameter.</summary>
    public static Variable LmHeadCrossEntropy(this Tape tape, Variable x, Parameter w, int[] targets, int chunk = Tensors.CrossEntropy.DefaultChunk) =>
        tape.Apply(new LmHeadCrossEntropyOp(x, w.Variable, targets, chunk));
}
