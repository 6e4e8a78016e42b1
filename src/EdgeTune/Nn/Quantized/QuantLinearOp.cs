using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Nn.Quantized;

/// <summary>
/// y = x · Wᵀ (+ b) over a frozen quantized weight W [out, in] (QLoRA's base layer).
/// x: (..., in), leading dimensions flattened into N rows; b: (out) or absent; y: (..., out).
/// </summary>
/// <remarks>
/// Forward runs <see cref="QuantGemm.ABt"/>, backward <see cref="QuantGemm.AB"/> for dx += dy · W; W is never
/// trained, so there is no dW, and no float copy of W exists at any time (panels are widened inside the
/// kernels). db += Σ_rows dy when the bias requires a gradient. F32 only. Saves nothing: x is not needed.
/// </remarks>
public sealed class QuantLinearOp : TapeOp
{
    private readonly Variable _x;
    private readonly QuantizedMatrix _w;
    private readonly Variable? _b;
    private Variable _y = null!;
    private int _n;

    public QuantLinearOp(Variable x, QuantizedMatrix w, Variable? b = null) : base("QuantLinear", x, b)
    {
        ArgumentNullException.ThrowIfNull(w);
        _x = x;
        _w = w;
        _b = b;
    }

    protected internal override void Forward(Tape tape)
    {
        if (_x.DType != DType.F32)
            throw new ShapeException($"{Name}: input '{_x.Name}' is {_x.DType}{_x.Value.ShapeString}; a quantized weight ('{_w.Name}') computes in F32 only");
        if (_x.Value.Rank < 1 || _x.Shape[^1] != _w.Cols)
            throw new ShapeException($"{Name}: input '{_x.Name}' {_x.Value.ShapeString} must end in {_w.Cols} for weight '{_w.Name}' {_w.Format.Info().Name}[{_w.Rows}, {_w.Cols}] (weight is [out, in])");
        if (_b is not null && (_b.DType != DType.F32 || _b.Value.Rank != 1 || _b.Shape[0] != _w.Rows))
            throw new ShapeException($"{Name}: bias '{_b.Name}' {_b.DType}{_b.Value.ShapeString} must be F32[{_w.Rows}] for weight '{_w.Name}'");
        long n = 1;
        for (int i = 0; i < _x.Shape.Length - 1; i++) n *= _x.Shape[i];
        _n = checked((int)n);
        int[] yShape = _x.Shape.ToArray();
        yShape[^1] = _w.Rows;
        _y = NewOutput(tape, DType.F32, yShape, "qlinear");
        var y = _y.Value.Span<float>();
        QuantGemm.ABt(_x.Value.ReadOnlySpan<float>(), _w, y, _n);
        if (_b is not null)
        {
            var b = _b.Value.ReadOnlySpan<float>();
            for (int r = 0; r < _n; r++)
            {
                var row = y.Slice(r * _w.Rows, _w.Rows);
                TensorPrimitives.Add(row, b, row);
            }
        }
    }

    protected internal override void Backward()
    {
        Tensor? dyT = _y.Grad;
        if (dyT is null) return;
        var dy = dyT.ReadOnlySpan<float>();
        if (GradOf(_x) is { } dx) QuantGemm.AB(dy, _w, dx.Span<float>(), _n, accumulate: true);
        if (GradOf(_b) is { } db)
        {
            var d = db.Span<float>();
            for (int r = 0; r < _n; r++) TensorPrimitives.Add(d, dy.Slice(r * _w.Rows, _w.Rows), d);
        }
    }
}

public static partial class QuantTapeOps
{
    /// <summary>x · Wᵀ (+ b) with a frozen quantized W [out, in]; x: (..., in) → (..., out); gradient flows to x (and b).</summary>
    public static Variable QuantLinear(this Tape tape, Variable x, QuantizedMatrix w, Variable? b = null) => tape.Apply(new QuantLinearOp(x, w, b));
}
