using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// RMS normalisation over the last dimension: y = x·rstd ⊙ w, rstd = 1/√(mean(x²) + eps).
/// x, y: (..., C) seen as rows [R, C]; w: [C]. Keeps the per-row rstd [R] for backward, which
/// accumulates dx and dw (each only when required; the kernel's other output goes to scratch).
/// </summary>
public sealed class RmsNormOp : TapeOp
{
    private readonly Variable _x, _w;
    private readonly double _eps;
    private Variable _y = null!;
    private int _rows, _cols;
    private float[]? _rstd32;
    private double[]? _rstd64;

    public RmsNormOp(Variable x, Variable w, double eps) : base("RmsNorm", x, w)
    {
        _x = x;
        _w = w;
        _eps = eps;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        (_rows, _cols) = OpChecks.Matrix(Name, "x", _x);
        OpChecks.Vector(Name, "weight", _w, _cols, _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, "rmsnorm");
        if (OpChecks.IsDouble(Name, _x.DType))
        {
            _rstd64 = new double[_rows];
            RmsNormReference.Forward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _y.Value.Span<double>(), _rstd64, _rows, _cols, _eps);
        }
        else
        {
            _rstd32 = new float[_rows];
            RmsNorm.Forward(_x.Value.ReadOnlySpan<float>(), _w.Value.ReadOnlySpan<float>(), _y.Value.Span<float>(), _rstd32, _rows, _cols, (float)_eps);
        }
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad, dx = GradOf(_x), dw = GradOf(_w);
        if (dy is null || (dx is null && dw is null)) return;
        int n = _rows * _cols;
        if (_x.DType == DType.F64)
        {
            Span<double> gx = dx is null ? new double[n] : dx.Span<double>(), gw = dw is null ? new double[_cols] : dw.Span<double>();
            RmsNormReference.Backward(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _rstd64, dy.ReadOnlySpan<double>(), gx, gw, _rows, _cols);
        }
        else
        {
            Span<float> gx = dx is null ? new float[n] : dx.Span<float>(), gw = dw is null ? new float[_cols] : dw.Span<float>();
            RmsNorm.Backward(_x.Value.ReadOnlySpan<float>(), _w.Value.ReadOnlySpan<float>(), _rstd32, dy.ReadOnlySpan<float>(), gx, gw, _rows, _cols);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>RMS norm over the last dimension of x (..., C) with weight w [C].</summary>
    public static Variable RmsNorm(this Tape tape, Variable x, Variable w, double eps = 1e-5) => tape.Apply(new RmsNormOp(x, w, eps));

    /// <summary>RMS norm with a weight parameter.</summary>
    public static Variable RmsNorm(this Tape tape, Variable x, Parameter w, double eps = 1e-5) => tape.Apply(new RmsNormOp(x, w.Variable, eps));
}
