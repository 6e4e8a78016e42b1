using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Layer normalisation over the last dimension: y = (x − mean)·rstd ⊙ w (+ b), rstd = 1/√(var + eps)
/// (biased variance). x, y: (..., C) seen as rows [R, C]; w, b: [C] (b optional). Keeps mean and
/// rstd [R] for backward, which accumulates dx, dw and db, each only when required.
/// </summary>
public sealed class LayerNormOp : TapeOp
{
    private readonly Variable _x, _w;
    private readonly Variable? _b;
    private readonly double _eps;
    private Variable _y = null!;
    private int _rows, _cols;
    private float[]? _mean32, _rstd32;
    private double[]? _mean64, _rstd64;

    public LayerNormOp(Variable x, Variable w, Variable? b, double eps) : base("LayerNorm", x, w, b)
    {
        _x = x;
        _w = w;
        _b = b;
        _eps = eps;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        (_rows, _cols) = OpChecks.Matrix(Name, "x", _x);
        OpChecks.Vector(Name, "weight", _w, _cols, _x);
        if (_b is not null) OpChecks.Vector(Name, "bias", _b, _cols, _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, "layernorm");
        if (OpChecks.IsDouble(Name, _x.DType))
        {
            (_mean64, _rstd64) = (new double[_rows], new double[_rows]);
            LayerNormReference.Forward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _b is null ? default : _b.Value.ReadOnlySpan<double>(),
                _y.Value.Span<double>(), _mean64, _rstd64, _rows, _cols, _eps);
        }
        else
        {
            (_mean32, _rstd32) = (new float[_rows], new float[_rows]);
            LayerNorm.Forward(_x.Value.ReadOnlySpan<float>(), _w.Value.ReadOnlySpan<float>(), _b is null ? default : _b.Value.ReadOnlySpan<float>(),
                _y.Value.Span<float>(), _mean32, _rstd32, _rows, _cols, (float)_eps);
        }
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad, dx = GradOf(_x), dw = GradOf(_w), db = GradOf(_b);
        if (dy is null || (dx is null && dw is null && db is null)) return;
        int n = _rows * _cols;
        // the kernel always writes dx and dw: a side that needs none accumulates into dropped scratch
        if (_x.DType == DType.F64)
        {
            Span<double> gx = dx is null ? new double[n] : dx.Span<double>(), gw = dw is null ? new double[_cols] : dw.Span<double>();
            LayerNormReference.Backward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _mean64, _rstd64, dy.ReadOnlySpan<double>(),
                gx, gw, db is null ? default : db.Span<double>(), _rows, _cols);
        }
        else
        {
            Span<float> gx = dx is null ? new float[n] : dx.Span<float>(), gw = dw is null ? new float[_cols] : dw.Span<float>();
            LayerNorm.Backward(_x.Value.ReadOnlySpan<float>(), _w.Value.ReadOnlySpan<float>(), _mean32, _rstd32, dy.ReadOnlySpan<float>(),
                gx, gw, db is null ? default : db.Span<float>(), _rows, _cols);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Layer norm over the last dimension of x (..., C) with weight w [C] and optional bias b [C].</summary>
    public static Variable LayerNorm(this Tape tape, Variable x, Variable w, Variable? b = null, double eps = 1e-5) =>
        tape.Apply(new LayerNormOp(x, w, b, eps));

    /// <summary>Layer norm with weight (and optional bias) parameters.</summary>
    public static Variable LayerNorm(this Tape tape, Variable x, Parameter w, Parameter? b = null, double eps = 1e-5) =>
        tape.Apply(new LayerNormOp(x, w.Variable, b?.Variable, eps));
}
