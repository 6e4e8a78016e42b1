using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Nn.Quantized;

/// <summary>
/// A frozen quantized table [V, C] that serves as the token embedding (rows decoded on lookup) and as the output
/// head (logits and the chunked cross-entropy decoded panel by panel): one module placed at
/// <c>model.embed_tokens</c> and, when tied, at <c>lm_head</c> too. No float copy of the table exists.
/// </summary>
public sealed class QuantizedEmbedding : IEmbedding, IOutputHead
{
    public QuantizedEmbedding(string name, QuantizedMatrix matrix, Parameter storage)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(storage);
        Name = name;
        Matrix = matrix;
        Weight = storage;
    }

    /// <summary>A module over a parameter that already holds a table's quantized bytes (a non-owning view).</summary>
    public static QuantizedEmbedding Over(string name, Parameter storage, QuantFormat format, int rows, int cols)
    {
        var t = storage.Value;
        return new(name, QuantizedMatrix.FromStorage(format, rows, cols, t.Reshape(t.Shape.ToArray()), storage.Name), storage);
    }

    /// <summary>Quantizes a float table into a new frozen parameter of the same name and a module over it.</summary>
    public static QuantizedEmbedding Quantize(string name, Parameter table, QuantFormat format)
    {
        var t = table.Value;
        var storage = QuantizedLinear.CreateStorage(format, t.Dim(0), t.Dim(1), table.Name);
        using (var q = QuantizedMatrix.Quantize(t, format)) q.Bytes.CopyTo(QuantizedLinear.WritableBytes(storage));
        return Over(name, new Parameter(table.Name, storage, trainable: false), format, t.Dim(0), t.Dim(1));
    }

    public string Name { get; }
    public QuantizedMatrix Matrix { get; }
    public QuantFormat Format => Matrix.Format;
    public Parameter Weight { get; }
    public int VocabSize => Matrix.Rows;
    public int Dim => Matrix.Cols;
    public IEnumerable<Parameter> Parameters => [Weight];

    public void Forward(ReadOnlySpan<int> ids, Span<float> x)
    {
        int c = Dim;
        if (x.Length != ids.Length * c) throw new ShapeException($"embedding '{Name}': x has {x.Length} elements, expected {ids.Length}×{c}");
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[i], $"embedding '{Name}': token id {ids[i]} at position {i} is outside the vocabulary [0, {VocabSize})");
            Matrix.DequantizeRows(ids[i], 1, x.Slice(i * c, c));
        }
    }

    public Variable Forward(Tape tape, int[] ids) => tape.Embedding(Matrix, ids);

    public void Forward(ReadOnlySpan<float> x, Span<float> logits, int rows) => QuantGemm.ABt(x, Matrix, logits, rows);

    public Variable Loss(Tape tape, Variable h, int[] targets, int vocabChunk) => tape.LmHeadCrossEntropy(h, Matrix, targets, vocabChunk);
}
