using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Token embedding: y[..., :] = table[ids[...], :]. table: [V, C]; ids: any shape of N ids (an
/// <c>int[]</c> is [N]) → y: ids' shape + [C]. The ids are copied at construction, so the caller may
/// reuse its buffer. An F32 input path reads F32, F16 or BF16 tables (a frozen table may stay as
/// stored); F64 runs the reference. Backward scatter-adds dTable[ids[t], :] += dy[t, :] (repeated ids
/// add up), only when the table requires a gradient. An id outside 0..V−1 raises
/// <see cref="ArgumentOutOfRangeException"/> naming it and its position.
/// </summary>
public sealed class EmbeddingOp : TapeOp
{
    private readonly Variable _table;
    private readonly int[] _ids;
    private readonly int[] _idShape;
    private Variable _y = null!;
    private int _vocab, _channels;

    /// <param name="table">[V, C] embedding table.</param>
    /// <param name="ids">Token ids, copied.</param>
    /// <param name="idShape">Shape of the ids (null: [ids.Length]).</param>
    public EmbeddingOp(Variable table, ReadOnlySpan<int> ids, int[]? idShape = null) : base("Embedding", table)
    {
        _table = table;
        _ids = ids.ToArray();
        _idShape = idShape ?? [_ids.Length];
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Rank(Name, "table", _table, 2);
        if (_table.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            throw new ShapeException($"{Name}: table '{_table.Name}' is {_table.DType}{_table.Value.ShapeString}; expected F32, F16, BF16 or F64");
        if (_table.RequiresGrad) OpChecks.Float(Name, "table", _table);
        (_vocab, _channels) = (_table.Shape[0], _table.Shape[1]);
        bool f64 = _table.DType == DType.F64;
        _y = NewOutput(tape, f64 ? DType.F64 : DType.F32, [.. _idShape, _channels], "embedding");
        var tv = _table.Value;
        switch (_table.DType)
        {
            case DType.F64: EmbeddingReference.Forward(tv.ReadOnlySpan<double>(), _ids, _y.Value.Span<double>(), _vocab, _channels); break;
            case DType.F32: Embedding.Forward(tv.ReadOnlySpan<float>(), _ids, _y.Value.Span<float>(), _vocab, _channels); break;
            case DType.F16: Embedding.Forward(tv.ReadOnlySpan<Half>(), _ids, _y.Value.Span<float>(), _vocab, _channels); break;
            default: Embedding.Forward(tv.ReadOnlySpan<ushort>(), _ids, _y.Value.Span<float>(), _vocab, _channels); break;
        }
    }

    protected internal override void Backward()
    {
        if (_y.Grad is not { } dy || GradOf(_table) is not { } dt) return;
        if (_table.DType == DType.F64) EmbeddingReference.Backward(_ids, dy.ReadOnlySpan<double>(), dt.Span<double>(), _vocab, _channels);
        else Embedding.Backward(_ids, dy.ReadOnlySpan<float>(), dt.Span<float>(), _vocab, _channels);
    }
}

public static partial class TapeOps
{
    /// <summary>Rows of <paramref name="table"/> [V, C] for token ids [N] → [N, C].</summary>
    public static Variable Embedding(this Tape tape, Variable table, int[] ids) => tape.Apply(new EmbeddingOp(table, ids));

    /// <summary>Rows of <paramref name="table"/> [V, C] for an I32 tensor of ids (any shape S) → S + [C].</summary>
    public static Variable Embedding(this Tape tape, Variable table, Tensor ids) =>
        tape.Apply(new EmbeddingOp(table, OpChecks.Ids("Embedding", "ids", ids), ids.Shape.ToArray()));

    /// <summary>Rows of the parameter <paramref name="table"/> [V, C] for token ids [N] → [N, C].</summary>
    public static Variable Embedding(this Tape tape, Parameter table, int[] ids) => tape.Apply(new EmbeddingOp(table.Variable, ids));
}
