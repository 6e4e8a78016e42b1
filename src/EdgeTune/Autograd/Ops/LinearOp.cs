using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Autograd;

/// <summary>
/// y = x · Wᵀ (+ b), the weight stored [out, in] as checkpoints store it.
/// x: (..., in), all leading dimensions flattened into N rows; w: (out, in); b: (out) or absent;
/// y: (..., out).
/// </summary>
/// <remarks>
/// F32 runs <see cref="Gemm"/> (ABt forward, AB for dx, AtB for dW); the weight may then also be a
/// frozen F16 or BF16 tensor, widened as it is read. F64 runs <see cref="GemmReference"/>.
/// Backward: dx += dy · W; dW += dyᵀ · x; db += Σ_rows dy — each only when that input requires a
/// gradient. Saves nothing: it reads x and W again in backward. On a tape with
/// <see cref="Tape.PerExample"/> naming W, backward hands x and dy to it instead of forming dW.
/// </remarks>
public sealed class LinearOp : TapeOp
{
    private readonly Variable _x, _w;
    private readonly Variable? _b;
    private Variable _y = null!;
    private int _n, _in, _out;
    private PerExampleLinearGradients? _perExample;

    public LinearOp(Variable x, Variable w, Variable? b = null) : base("Linear", x, w, b)
    {
        _x = x;
        _w = w;
        _b = b;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "input", _x);
        OpChecks.Rank(Name, "weight", _w, 2);
        if (_x.Value.Rank < 1)
            throw new ShapeException($"{Name}: input '{_x.Name}' {_x.Value.ShapeString} must have at least one dimension");
        _out = _w.Shape[0];
        _in = _w.Shape[1];
        if (_x.Shape[^1] != _in)
            throw new ShapeException($"{Name}: input '{_x.Name}' {_x.Value.ShapeString} has last dimension {_x.Shape[^1]} but weight '{_w.Name}' {_w.Value.ShapeString} expects {_in} (weight is [out, in])");
        bool f64 = _x.DType == DType.F64;
        if (f64 ? _w.DType != DType.F64 : _w.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ShapeException($"{Name}: weight '{_w.Name}' is {_w.DType}{_w.Value.ShapeString} but input '{_x.Name}' is {_x.DType}; expected {(f64 ? "F64" : "F32, F16 or BF16")}");
        if (_w.RequiresGrad && _w.DType != _x.DType)
            throw new ShapeException($"{Name}: weight '{_w.Name}' is {_w.DType} and requires a gradient; only F32/F64 weights can be trained");
        if (_b is not null)
        {
            OpChecks.SameDType(Name, _x, _b);
            if (_b.Value.Rank != 1 || _b.Shape[0] != _out)
                throw new ShapeException($"{Name}: bias '{_b.Name}' {_b.Value.ShapeString} must be [{_out}] for weight '{_w.Name}' {_w.Value.ShapeString}");
        }
        _n = RowCount(_x.Shape);
        _perExample = NeedsBackward && tape.PerExample is { } pe && pe.Captures(_w) ? pe : null;
        int[] yShape = _x.Shape.ToArray();
        yShape[^1] = _out;
        _y = NewOutput(tape, _x.DType, yShape, "linear");

        if (f64)
        {
            GemmReference.ABt(_x.Value.ReadOnlySpan<double>(), _w.Value.ReadOnlySpan<double>(), _y.Value.Span<double>(), _n, _in, _out);
            AddBias<double>();
        }
        else
        {
            var x = _x.Value.ReadOnlySpan<float>();
            var y = _y.Value.Span<float>();
            switch (_w.DType)
            {
                case DType.F32: Gemm.ABt(x, _w.Value.ReadOnlySpan<float>(), y, _n, _in, _out); break;
                case DType.F16: Gemm.ABt(x, _w.Value.ReadOnlySpan<Half>(), y, _n, _in, _out); break;
                default: Gemm.ABt(x, _w.Value.ReadOnlySpan<ushort>(), y, _n, _in, _out); break;
            }
            AddBias<float>();
        }
    }

    private static int RowCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        for (int i = 0; i < shape.Length - 1; i++) n *= shape[i];
        return checked((int)n);
    }

    // y[r, :] += b for every row r.
    private void AddBias<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (_b is null) return;
        ReadOnlySpan<T> b = _b.Value.ReadOnlySpan<T>();
        Span<T> y = _y.Value.Span<T>();
        for (int r = 0; r < _n; r++)
        {
            Span<T> row = y.Slice(r * _out, _out);
            TensorPrimitives.Add(row, b, row);
        }
    }

    protected internal override void Backward()
    {
        Tensor dyT = _y.Grad!;
        Tensor? dx = GradOf(_x), dw = _perExample is null ? GradOf(_w) : null, db = GradOf(_b);
        _perExample?.Record(_w, _x.Value, dyT, _n, _in, _out);
        if (_x.DType == DType.F64)
        {
            var dy = dyT.ReadOnlySpan<double>();
            if (dx is not null) GemmReference.AB(dy, _w.Value.ReadOnlySpan<double>(), dx.Span<double>(), _n, _out, _in, accumulate: true);
            if (dw is not null) GemmReference.AtB(dy, _x.Value.ReadOnlySpan<double>(), dw.Span<double>(), _out, _n, _in, accumulate: true);
            if (db is not null) SumRows(dy, db.Span<double>());
        }
        else
        {
            var dy = dyT.ReadOnlySpan<float>();
            if (dx is not null)
            {
                var d = dx.Span<float>();
                switch (_w.DType)
                {
                    case DType.F32: Gemm.AB(dy, _w.Value.ReadOnlySpan<float>(), d, _n, _out, _in, accumulate: true); break;
                    case DType.F16: Gemm.AB(dy, _w.Value.ReadOnlySpan<Half>(), d, _n, _out, _in, accumulate: true); break;
                    default: Gemm.AB(dy, _w.Value.ReadOnlySpan<ushort>(), d, _n, _out, _in, accumulate: true); break;
                }
            }
            if (dw is not null) Gemm.AtB(dy, _x.Value.ReadOnlySpan<float>(), dw.Span<float>(), _out, _n, _in, accumulate: true);
            if (db is not null) SumRows(dy, db.Span<float>());
        }
    }

    // db[o] += Σ_r dy[r, o]
    private void SumRows<T>(ReadOnlySpan<T> dy, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < _n; r++) TensorPrimitives.Add(db, dy.Slice(r * _out, _out), db);
    }
}

public static partial class TapeOps
{
    /// <summary>x · Wᵀ (+ b) with W stored [out, in]; x: (..., in) → (..., out).</summary>
    public static Variable Linear(this Tape tape, Variable x, Variable w, Variable? b = null) => tape.Apply(new LinearOp(x, w, b));

    /// <summary>x · Wᵀ (+ b) through parameters.</summary>
    public static Variable Linear(this Tape tape, Variable x, Parameter w, Parameter? b = null) =>
        tape.Apply(new LinearOp(x, w.Variable, b?.Variable));
}
