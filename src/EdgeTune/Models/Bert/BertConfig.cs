namespace EdgeTune.Models.Bert;

/// <summary>The shape of a BERT encoder (transformers' BertConfig fields under their EdgeTune names).</summary>
public sealed record BertConfig(
    int VocabSize,
    int HiddenSize,
    int Layers,
    int Heads,
    int IntermediateSize,
    int MaxPositions,
    int TypeVocabSize,
    float LayerNormEps = 1e-12f)
{
    /// <summary>sentence-transformers/all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522, 512 positions.</summary>
    public static BertConfig AllMiniLmL6V2 { get; } = new(30522, 384, 6, 12, 1536, 512, 2);

    public int HeadDim => HiddenSize / Heads;

    /// <exception cref="ArgumentException">A size is not positive or the hidden size does not split into the heads.</exception>
    public void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || Layers <= 0 || Heads <= 0 || IntermediateSize <= 0 || MaxPositions <= 0 || TypeVocabSize <= 0)
            throw new ArgumentException($"every size of a BERT config must be positive: {this}");
        if (HiddenSize % Heads != 0)
            throw new ArgumentException($"hidden size {HiddenSize} does not split into {Heads} heads");
    }
}
