using Microsoft.Extensions.AI;

namespace EdgeTune.Models.Bert;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a local BERT encoder: each
/// string becomes its normalised sentence embedding (<see cref="BertEncoder.SentenceEmbeddings"/>), computed in
/// batches of <see cref="BatchSize"/> on this machine. The encoder and tokenizer belong to the caller; load them with
/// <see cref="BertFolder.Load(string, Security.EncryptionKey?)"/>, which takes the key of an encrypted run folder.
/// </summary>
public sealed class BertEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly BertEncoder _encoder;
    private readonly BertWordPiece _tokenizer;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <param name="modelId">The id reported in metadata and on each embedding (e.g. "all-MiniLM-L6-v2").</param>
    public BertEmbeddingGenerator(BertEncoder encoder, BertWordPiece tokenizer, string modelId = "edgetune-bert", int batchSize = 32, int maxLength = 256)
    {
        _encoder = encoder ?? throw new ArgumentNullException(nameof(encoder));
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        ArgumentException.ThrowIfNullOrEmpty(modelId);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be positive");
        if (maxLength < 2 || maxLength > encoder.Config.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"must lie in 2..{encoder.Config.MaxPositions} (the model's positions)");
        (ModelId, BatchSize, MaxLength) = (modelId, batchSize, maxLength);
        _metadata = new EmbeddingGeneratorMetadata("edgetune", null, modelId, encoder.Config.HiddenSize);
    }

    public string ModelId { get; }

    /// <summary>Texts embedded per forward pass.</summary>
    public int BatchSize { get; }

    /// <summary>Tokens kept per text ([CLS] and [SEP] included); longer texts are truncated.</summary>
    public int MaxLength { get; }

    /// <exception cref="NotSupportedException"><see cref="EmbeddingGenerationOptions.Dimensions"/> asks for another size than the model's.</exception>
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        int dim = _encoder.Config.HiddenSize;
        if (options?.Dimensions is int d && d != dim)
            throw new NotSupportedException($"{ModelId} gives {dim}-dimensional embeddings; {d} were asked for");
        var texts = values.ToList();
        var result = new GeneratedEmbeddings<Embedding<float>>(texts.Count);
        var created = DateTimeOffset.UtcNow;
        long tokens = 0;
        for (int i = 0; i < texts.Count; i += BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = _tokenizer.EncodeBatch(texts.Skip(i).Take(BatchSize).ToList(), MaxLength);
            tokens += batch.AttentionMask.Sum();
            foreach (var v in _encoder.SentenceEmbeddings(batch))
                result.Add(new Embedding<float>(v) { ModelId = ModelId, CreatedAt = created });
        }
        result.Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens };
        return Task.FromResult(result);
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>The encoder and tokenizer belong to the caller; nothing to release.</summary>
    public void Dispose() { }
}
