using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Row-wise L2 normalisation as torch's <c>F.normalize</c>: y = x / max(‖x‖, eps) for each row of x [R, C].
/// Backward: where ‖x‖ &gt; eps, dx += (dy − y·(y·dy)) / ‖x‖; where the floor applies, dx += dy / eps. The row norms
/// are kept. Generic over F32/F64 (a plain loop per row: R·C work).
/// </summary>
public sealed class L2NormalizeOp : TapeOp
{
    private readonly Variable _x;
    private readonly double _eps;
    private Variable _y = null!;
    private double[] _norm = [];
    private int _rows, _cols;

    public L2NormalizeOp(Variable x, double eps = 1e-12) : base("L2Normalize", x)
    {
        _x = x;
        _eps = eps;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        (_rows, _cols) = OpChecks.Matrix(Name, "x", _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, "l2_normalize");
        _norm = new double[_rows];
        if (OpChecks.IsDouble(Name, _x.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var x = _x.Value.ReadOnlySpan<T>();
            var y = _y.Value.Span<T>();
            for (int r = 0; r < _rows; r++)
            {
                double sq = 0;
                for (int c = 0; c < _cols; c++) { double e = double.CreateChecked(x[r * _cols + c]); sq += e * e; }
                _norm[r] = Math.Sqrt(sq);
                T inv = T.CreateChecked(1.0 / Math.Max(_norm[r], _eps));
                for (int c = 0; c < _cols; c++) y[r * _cols + c] = x[r * _cols + c] * inv;
            }
        }
    }

    protected internal override void Backward()
    {
        if (_y.Grad is not { } dy || GradOf(_x) is not { } dx) return;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var y = _y.Value.ReadOnlySpan<T>();
            var g = dy.ReadOnlySpan<T>();
            var d = dx.Span<T>();
            for (int r = 0; r < _rows; r++)
            {
                int o = r * _cols;
                if (_norm[r] <= _eps)
                {
                    T s = T.CreateChecked(1.0 / _eps);
                    for (int c = 0; c < _cols; c++) d[o + c] += g[o + c] * s;
                    continue;
                }
                double dot = 0;
                for (int c = 0; c < _cols; c++) dot += double.CreateChecked(y[o + c]) * double.CreateChecked(g[o + c]);
                T inv = T.CreateChecked(1.0 / _norm[r]), yd = T.CreateChecked(dot);
                for (int c = 0; c < _cols; c++) d[o + c] += (g[o + c] - y[o + c] * yd) * inv;
            }
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Each row of x [R, C] divided by max(its L2 norm, <paramref name="eps"/>).</summary>
    public static Variable L2Normalize(this Tape tape, Variable x, double eps = 1e-12) => tape.Apply(new L2NormalizeOp(x, eps));
}
