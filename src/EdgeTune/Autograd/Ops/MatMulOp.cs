using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// c = a · b for plain matrices. a: (M, K); b: (K, N); c: (M, N); a and b of one dtype (F32 runs
/// <see cref="Gemm"/>, F64 <see cref="GemmReference"/>).
/// Backward: da += dc · bᵀ; db += aᵀ · dc.
/// </summary>
public sealed class MatMulOp : TapeOp
{
    private readonly Variable _a, _b;
    private Variable _c = null!;
    private int _m, _k, _n;

    public MatMulOp(Variable a, Variable b) : base("MatMul", a, b)
    {
        _a = a;
        _b = b;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "a", _a);
        OpChecks.SameDType(Name, _a, _b);
        OpChecks.Rank(Name, "a", _a, 2);
        OpChecks.Rank(Name, "b", _b, 2);
        (_m, _k, _n) = (_a.Shape[0], _a.Shape[1], _b.Shape[1]);
        if (_b.Shape[0] != _k)
            throw new ShapeException($"{Name}: a '{_a.Name}' {_a.Value.ShapeString} and b '{_b.Name}' {_b.Value.ShapeString}: inner dimensions {_k} and {_b.Shape[0]} differ");
        _c = NewOutput(tape, _a.DType, [_m, _n], "matmul");
        if (OpChecks.IsDouble(Name, _a.DType))
            GemmReference.AB(_a.Value.ReadOnlySpan<double>(), _b.Value.ReadOnlySpan<double>(), _c.Value.Span<double>(), _m, _k, _n);
        else
            Gemm.AB(_a.Value.ReadOnlySpan<float>(), _b.Value.ReadOnlySpan<float>(), _c.Value.Span<float>(), _m, _k, _n);
    }

    protected internal override void Backward()
    {
        Tensor dc = _c.Grad!;
        Tensor? da = GradOf(_a), db = GradOf(_b);
        if (_a.DType == DType.F64)
        {
            // da[M,K] += dc[M,N] · b[K,N]ᵀ ; db[K,N] += a[M,K]ᵀ · dc[M,N]
            if (da is not null) GemmReference.ABt(dc.ReadOnlySpan<double>(), _b.Value.ReadOnlySpan<double>(), da.Span<double>(), _m, _n, _k, accumulate: true);
            if (db is not null) GemmReference.AtB(_a.Value.ReadOnlySpan<double>(), dc.ReadOnlySpan<double>(), db.Span<double>(), _k, _m, _n, accumulate: true);
        }
        else
        {
            if (da is not null) Gemm.ABt(dc.ReadOnlySpan<float>(), _b.Value.ReadOnlySpan<float>(), da.Span<float>(), _m, _n, _k, accumulate: true);
            if (db is not null) Gemm.AtB(_a.Value.ReadOnlySpan<float>(), dc.ReadOnlySpan<float>(), db.Span<float>(), _k, _m, _n, accumulate: true);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>a[M,K] · b[K,N].</summary>
    public static Variable MatMul(this Tape tape, Variable a, Variable b) => tape.Apply(new MatMulOp(a, b));
}
