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

    /// <summary>The config that named weights imply: vocabulary, positions and token types from the embedding tables, the
    /// hidden size from the embedding LayerNorm, the depth from the highest <c>encoder.layer.{i}</c>, the feed-forward width
    /// from <c>intermediate.dense.bias</c>. <paramref name="heads"/> is not visible in any shape and must be given.</summary>
    /// <exception cref="Formats.CheckpointFormatException">A tensor the inference needs is missing or inconsistent.</exception>
    public static BertConfig Infer(IReadOnlyDictionary<string, float[]> parameters, int heads, string source)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        float[] Need(string name) => parameters.TryGetValue(name, out var v) ? v
            : throw new Formats.CheckpointFormatException(source, "the tensor is missing; cannot infer the BERT config", name);
        int h = Need("embeddings.LayerNorm.weight").Length;
        int Rows(string name)
        {
            int n = Need(name).Length;
            if (h == 0 || n % h != 0) throw new Formats.CheckpointFormatException(source, $"{n} values do not split into rows of the hidden size {h}", name);
            return n / h;
        }
        int layers = 0;
        while (parameters.ContainsKey($"encoder.layer.{layers}.attention.self.query.bias")) layers++;
        if (layers == 0) throw new Formats.CheckpointFormatException(source, "no encoder layer found", "encoder.layer.0.attention.self.query.bias");
        var c = new BertConfig(Rows("embeddings.word_embeddings.weight"), h, layers, heads, Need("encoder.layer.0.intermediate.dense.bias").Length,
            Rows("embeddings.position_embeddings.weight"), Rows("embeddings.token_type_embeddings.weight"));
        try { c.Validate(); }
        catch (ArgumentException e) { throw new Formats.CheckpointFormatException(source, e.Message, "embeddings.LayerNorm.weight"); }
        return c;
    }

    /// <exception cref="ArgumentException">A size is not positive or the hidden size does not split into the heads.</exception>
    public void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || Layers <= 0 || Heads <= 0 || IntermediateSize <= 0 || MaxPositions <= 0 || TypeVocabSize <= 0)
            throw new ArgumentException($"every size of a BERT config must be positive: {this}");
        if (HiddenSize % Heads != 0)
            throw new ArgumentException($"hidden size {HiddenSize} does not split into {Heads} heads");
    }
}
