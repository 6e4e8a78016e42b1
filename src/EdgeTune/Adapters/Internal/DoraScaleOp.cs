using System.Numerics;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Adapters.Internal;

/// <summary>
/// DoRA's per-output-row factor c[o] = m[o] / ‖V[o, :]‖ with V = W + s·B·A, the column-wise norm of the
/// DoRA paper taken over each output row of the [out, in] weight (PEFT's weight norm over dim 1).
/// W: (out, in) frozen base weight; A: (r, in); B: (out, r); m: (out); c: (out).
/// </summary>
/// <remarks>
/// The adapted layer is then y = c ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) (+ bias), which equals x·W'ᵀ for
/// W' = m ⊙ V/‖V‖_row. Backward: dm += dc / n. When <see cref="DetachNorm"/> is false the norm's own
/// gradient flows too: dV[o, :] = −dc[o]·m[o]/n[o]³ · V[o, :], dB += s·dV·Aᵀ, dA += s·Bᵀ·dV (V is kept for it).
/// When true (the DoRA paper §4.3 and PEFT), the norm is a constant and A, B get no gradient here.
/// </remarks>
internal sealed class DoraScaleOp : TapeOp
{
    private readonly Variable _w, _a, _b, _m;
    private readonly double _s;
    private Variable _c = null!;
    private double[] _norm = [];
    private Tensor? _v;
    private int _out, _in, _r;

    public DoraScaleOp(Variable w, Variable a, Variable b, Variable m, double scale, bool detachNorm) : base("DoraScale", w, a, b, m)
    {
        _w = w;
        _a = a;
        _b = b;
        _m = m;
        _s = scale;
        DetachNorm = detachNorm;
    }

    public bool DetachNorm { get; }

    protected internal override void Forward(Tape tape)
    {
        _out = _w.Shape[0];
        _in = _w.Shape[1];
        _r = _a.Shape[0];
        bool f64 = _m.DType == DType.F64;
        using var v = ComputeV(_w.Value, _a.Value, _b.Value, _s, f64);
        _norm = RowNorms(v, _out, _in);
        _c = NewOutput(tape, _m.DType, [_out], "dora_scale");
        if (f64) Fill<double>(); else Fill<float>();
        if (NeedsBackward && !DetachNorm && (_a.RequiresGrad || _b.RequiresGrad)) _v = v.Clone();

        void Fill<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> m = _m.Value.ReadOnlySpan<T>();
            Span<T> c = _c.Value.Span<T>();
            for (int o = 0; o < _out; o++) c[o] = m[o] / T.CreateChecked(_norm[o]);
        }
    }

    /// <summary>V = W + s·B·A as a new tensor of F32 (or F64 when <paramref name="f64"/>).</summary>
    internal static Tensor ComputeV(Tensor w, Tensor a, Tensor b, double s, bool f64)
    {
        int outF = w.Dim(0), inF = w.Dim(1), r = a.Dim(0);
        if (f64)
        {
            var v = Tensor.Zeros(DType.F64, [outF, inF], "dora.v");
            GemmReference.AB(b.ReadOnlySpan<double>(), a.ReadOnlySpan<double>(), v.Span<double>(), outF, r, inF);
            TensorPrimitives.MultiplyAdd(v.Span<double>(), s, w.ReadOnlySpan<double>(), v.Span<double>());
            return v;
        }
        var vf = Tensor.Zeros(DType.F32, [outF, inF], "dora.v");
        Gemm.AB(b.ReadOnlySpan<float>(), a.ReadOnlySpan<float>(), vf.Span<float>(), outF, r, inF);
        using var w32 = w.DType == DType.F32 ? null : w.To(DType.F32);
        TensorPrimitives.MultiplyAdd(vf.Span<float>(), (float)s, (w32 ?? w).ReadOnlySpan<float>(), vf.Span<float>());
        return vf;
    }

    /// <summary>‖V[o, :]‖₂ for every row, summed in double.</summary>
    internal static double[] RowNorms(Tensor v, int rows, int cols)
    {
        var n = new double[rows];
        for (int o = 0; o < rows; o++)
        {
            double acc = 0;
            if (v.DType == DType.F64)
                foreach (double e in v.ReadOnlySpan<double>().Slice(o * cols, cols)) acc += e * e;
            else
                foreach (float e in v.ReadOnlySpan<float>().Slice(o * cols, cols)) acc += (double)e * e;
            n[o] = Math.Sqrt(acc);
        }
        return n;
    }

    protected internal override void Backward()
    {
        Tensor dcT = _c.Grad!;
        if (_m.DType == DType.F64) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> dc = dcT.ReadOnlySpan<T>(), m = _m.Value.ReadOnlySpan<T>();
            if (GradOf(_m) is { } dmT)
            {
                Span<T> dm = dmT.Span<T>();
                for (int o = 0; o < _out; o++) dm[o] += dc[o] / T.CreateChecked(_norm[o]);
            }
            if (_v is null) return;
            // dV[o, :] = s · (−dc[o]·m[o]/n³) · V[o, :] (s folded in here)
            using var dv = Tensor.Zeros(_v.DType, [_out, _in], "dora.dv");
            Span<T> d = dv.Span<T>();
            ReadOnlySpan<T> v = _v.ReadOnlySpan<T>();
            for (int o = 0; o < _out; o++)
            {
                double n = _norm[o];
                T g = T.CreateChecked(-_s * double.CreateChecked(dc[o] * m[o]) / (n * n * n));
                TensorPrimitives.Multiply(v.Slice(o * _in, _in), g, d.Slice(o * _in, _in));
            }
            Tensor? dA = GradOf(_a), dB = GradOf(_b);
            if (typeof(T) == typeof(double))
            {
                if (dB is not null) GemmReference.ABt(dv.ReadOnlySpan<double>(), _a.Value.ReadOnlySpan<double>(), dB.Span<double>(), _out, _in, _r, accumulate: true);
                if (dA is not null) GemmReference.AtB(_b.Value.ReadOnlySpan<double>(), dv.ReadOnlySpan<double>(), dA.Span<double>(), _r, _out, _in, accumulate: true);
            }
            else
            {
                if (dB is not null) Gemm.ABt(dv.ReadOnlySpan<float>(), _a.Value.ReadOnlySpan<float>(), dB.Span<float>(), _out, _in, _r, accumulate: true);
                if (dA is not null) Gemm.AtB(_b.Value.ReadOnlySpan<float>(), dv.ReadOnlySpan<float>(), dA.Span<float>(), _r, _out, _in, accumulate: true);
            }
        }
    }

    public override void Dispose()
    {
        _v?.Dispose();
        _v = null;
    }
}
