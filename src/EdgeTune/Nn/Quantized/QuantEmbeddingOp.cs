using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn.Quantized;

/// <summary>
/// Token embedding from a frozen quantized table [V, C]: y[t, :] = dequantized row ids[t] (only the rows
/// looked up are decoded). No gradient flows to the table, so the output needs none.
/// </summary>
public sealed class QuantEmbeddingOp : TapeOp
{
    private readonly QuantizedMatrix _table;
    private readonly int[] _ids;

    /// <param name="ids">Token ids [N], copied.</param>
    public QuantEmbeddingOp(QuantizedMatrix table, ReadOnlySpan<int> ids) : base("QuantEmbedding")
    {
        ArgumentNullException.ThrowIfNull(table);
        _table = table;
        _ids = ids.ToArray();
    }

    protected internal override void Forward(Tape tape)
    {
        int c = _table.Cols;
        var y = NewOutput(tape, DType.F32, [_ids.Length, c], "embedding").Value.Span<float>();
        for (int t = 0; t < _ids.Length; t++)
        {
            int id = _ids[t];
            if ((uint)id >= (uint)_table.Rows)
                throw new ArgumentOutOfRangeException(nameof(_ids), id, $"{Name}: token id {id} at position {t} is outside the table '{_table.Name}' [0, {_table.Rows})");
            _table.DequantizeRows(id, 1, y.Slice(t * c, c));
        }
    }

    protected internal override void Backward() { }
}

public static partial class QuantTapeOps
{
    /// <summary>Rows of a frozen quantized table [V, C] for token ids [N] → [N, C] (no gradient to the table).</summary>
    public static Variable Embedding(this Tape tape, QuantizedMatrix table, int[] ids) => tape.Apply(new QuantEmbeddingOp(table, ids));
}
