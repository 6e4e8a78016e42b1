using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>A float embedding table [V, C] (F32, or F16/BF16 widened row by row when stored so).</summary>
public sealed class TokenEmbedding : IEmbedding
{
    public TokenEmbedding(string name, Parameter weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Value.Rank != 2) throw new ShapeException($"embedding '{name}': table must be 2-D [V, C], got {weight.Value.ShapeString}");
        Name = name;
        Weight = weight;
    }

    public string Name { get; }
    public Parameter Weight { get; }
    public int VocabSize => Weight.Value.Dim(0);
    public int Dim => Weight.Value.Dim(1);
    public IEnumerable<Parameter> Parameters => [Weight];

    public void Forward(ReadOnlySpan<int> ids, Span<float> x)
    {
        var t = Weight.Value;
        switch (t.DType)
        {
            case DType.F32: Embedding.Forward(t.ReadOnlySpan<float>(), ids, x, VocabSize, Dim); break;
            case DType.F16: Embedding.Forward(t.ReadOnlySpan<Half>(), ids, x, VocabSize, Dim); break;
            case DType.BF16: Embedding.Forward(t.ReadOnlySpan<ushort>(), ids, x, VocabSize, Dim); break;
            default: throw new ShapeException($"embedding '{t.Name}' has dtype {t.DType}; F32, F16 or BF16 expected");
        }
    }

    public Variable Forward(Tape tape, int[] ids) => tape.Embedding(Weight, ids);
}

/// <summary>A float output head: logits = x·Wᵀ with W [V, C] of any float dtype (the embedding's table when tied).</summary>
public sealed class LinearHead : IOutputHead
{
    public LinearHead(string name, Parameter weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Value.Rank != 2) throw new ShapeException($"output head '{name}': weight must be 2-D [V, C], got {weight.Value.ShapeString}");
        Name = name;
        Weight = weight;
    }

    public string Name { get; }
    public Parameter Weight { get; }
    public int VocabSize => Weight.Value.Dim(0);
    public int Dim => Weight.Value.Dim(1);
    public IEnumerable<Parameter> Parameters => [Weight];

    public void Forward(ReadOnlySpan<float> x, Span<float> logits, int rows) => LinearKernel.Forward(x, Weight.Value, logits, rows);

    public Variable Loss(Tape tape, Variable h, int[] targets, int vocabChunk) => tape.LmHeadCrossEntropy(h, Weight, targets, vocabChunk);
}
