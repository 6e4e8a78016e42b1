using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// The training objectives of an encoder, built from tape ops so that one backward reaches the encoder's (or its
/// adapters') parameters: in-batch-negatives contrastive learning of sentence embeddings (sentence-transformers'
/// MultipleNegativesRankingLoss) and sequence classification with a linear head on the mean-pooled output.
/// </summary>
public static class EncoderLosses
{
    /// <summary>sentence-transformers' default scale of the cosine similarities (MultipleNegativesRankingLoss).</summary>
    public const double DefaultScale = 20.0;

    /// <summary>
    /// MultipleNegativesRankingLoss over <paramref name="pairs"/>: rows 0..n−1 are anchors, rows n..2n−1 their positives
    /// (so the batch holds 2n rows). Embeddings are mean-pooled and L2-normalised; scores[i, j] = scale·cos(aᵢ, pⱼ); the
    /// loss is the mean cross-entropy of picking pᵢ for aᵢ among all n positives (the others are in-batch negatives).
    /// </summary>
    /// <exception cref="ArgumentException">The batch does not hold an even number of rows (at least 2).</exception>
    public static Variable Contrastive(Tape tape, BertEncoder encoder, BertBatch pairs, double scale = DefaultScale)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Batch < 2 || pairs.Batch % 2 != 0)
            throw new ArgumentException($"a contrastive batch holds anchors then positives (2n rows); got {pairs.Batch} rows");
        int n = pairs.Batch / 2;
        var e = encoder.Pooled(tape, pairs, normalize: true); // (2n, C)
        var anchors = tape.Embedding(e, Enumerable.Range(0, n).ToArray()); // row gather (n, C)
        var positives = tape.Embedding(e, Enumerable.Range(n, n).ToArray());
        var scores = tape.Scale(tape.Linear(anchors, positives), scale); // (n, n) = a·pᵀ
        return tape.CrossEntropy(scores, Enumerable.Range(0, n).ToArray());
    }

    /// <summary>Logits (B, classes) of <paramref name="head"/> on the mean-pooled (not normalised) last hidden state.</summary>
    public static Variable ClassifierLogits(Tape tape, BertEncoder encoder, ILinear head, BertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(head);
        if (head.InFeatures != encoder.Config.HiddenSize)
            throw new ArgumentException($"classifier head '{head.Name}' reads {head.InFeatures} features; the encoder gives {encoder.Config.HiddenSize}");
        return head.Forward(tape, encoder.Pooled(tape, batch, normalize: false));
    }

    /// <summary>Mean cross-entropy of <paramref name="labels"/> [B] (each in 0..classes−1) under <see cref="ClassifierLogits"/>.</summary>
    public static Variable Classification(Tape tape, BertEncoder encoder, ILinear head, BertBatch batch, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.Length != batch.Batch) throw new ArgumentException($"{labels.Length} labels for a batch of {batch.Batch} rows");
        foreach (int l in labels)
            if ((uint)l >= (uint)head.OutFeatures) throw new ArgumentException($"label {l} is outside the {head.OutFeatures} classes of '{head.Name}'");
        return tape.CrossEntropy(ClassifierLogits(tape, encoder, head, batch), labels);
    }

    /// <summary>A classification head "classifier" [classes, hidden] with bias: N(0, 0.02) weights (as transformers
    /// initialises BERT heads), zero bias, trainable, in the encoder's dtype.</summary>
    public static Linear CreateClassifier(BertEncoder encoder, int classes, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "a classifier needs at least 2 classes");
        int h = encoder.Config.HiddenSize;
        var w = Tensor.Zeros(DType.F32, [classes, h], "classifier.weight");
        new Rng(seed).FillGaussian(w.Span<float>(), 0f, 0.02f);
        var b = Tensor.Zeros(DType.F32, [classes], "classifier.bias");
        if (encoder.DType != DType.F32)
        {
            var (w2, b2) = (w.To(encoder.DType), b.To(encoder.DType));
            w.Dispose();
            b.Dispose();
            (w, b) = (w2, b2);
        }
        return new Linear("classifier", new Parameter(w.Name, w, trainable: true), new Parameter(b.Name, b, trainable: true));
    }
}
