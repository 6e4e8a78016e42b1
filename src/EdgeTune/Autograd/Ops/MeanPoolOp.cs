using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Masked mean over time, as sentence-transformers pools token embeddings: x (B·T, C) → y (B, C),
/// y[b] = Σ_t mask[b,t]·x[b,t] / max(Σ_t mask[b,t], 1e-9). Backward: dx[b,t] += mask[b,t]·dy[b] / count_b.
/// Generic over F32/F64 (B·T·C work).
/// </summary>
public sealed class MeanPoolOp : TapeOp
{
    private readonly Variable _x;
    private readonly int[] _mask;
    private readonly int _batch, _time;
    private Variable _y = null!;
    private int _cols;

    /// <param name="mask">[B·T]; nonzero marks the positions averaged. Copied.</param>
    public MeanPoolOp(Variable x, ReadOnlySpan<int> mask, int batch, int time) : base("MeanPool", x)
    {
        _x = x;
        _mask = mask.ToArray();
        (_batch, _time) = (batch, time);
    }

    private double Inverse(int b)
    {
        int count = 0;
        for (int t = 0; t < _time; t++) if (_mask[b * _time + t] != 0) count++;
        return 1.0 / Math.Max(count, 1e-9);
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        int rows;
        (rows, _cols) = OpChecks.Matrix(Name, "x", _x);
        if (_batch <= 0 || _time <= 0 || rows != _batch * _time || _mask.Length != rows)
            throw new ShapeException($"{Name}: x '{_x.Name}' {_x.Value.ShapeString} and a mask of {_mask.Length} must both cover B·T = {_batch}·{_time} rows");
        _y = NewOutput(tape, _x.DType, [_batch, _cols], "mean_pool");
        if (OpChecks.IsDouble(Name, _x.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var x = _x.Value.ReadOnlySpan<T>();
            var y = _y.Value.Span<T>();
            for (int b = 0; b < _batch; b++)
            {
                var yb = y.Slice(b * _cols, _cols);
                for (int t = 0; t < _time; t++)
                    if (_mask[b * _time + t] != 0)
                        System.Numerics.Tensors.TensorPrimitives.Add(yb, x.Slice((b * _time + t) * _cols, _cols), yb);
                System.Numerics.Tensors.TensorPrimitives.Multiply(yb, T.CreateChecked(Inverse(b)), yb);
            }
        }
    }

    protected internal override void Backward()
    {
        if (_y.Grad is not { } dy || GradOf(_x) is not { } dx) return;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var g = dy.ReadOnlySpan<T>();
            var d = dx.Span<T>();
            for (int b = 0; b < _batch; b++)
            {
                T inv = T.CreateChecked(Inverse(b));
                for (int t = 0; t < _time; t++)
                {
                    if (_mask[b * _time + t] == 0) continue;
                    var row = d.Slice((b * _time + t) * _cols, _cols);
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g.Slice(b * _cols, _cols), inv, row, row);
                }
            }
        }
    }
}

public static partial class TapeOps
{
    /// <summary>Mean of x (B·T, C) over the positions <paramref name="mask"/> [B·T] marks, per sequence → (B, C).</summary>
    public static Variable MeanPool(this Tape tape, Variable x, int[] mask, int batch, int time) =>
        tape.Apply(new MeanPoolOp(x, mask, batch, time));
}
