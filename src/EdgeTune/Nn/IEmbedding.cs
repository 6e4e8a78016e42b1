using EdgeTune.Autograd;

namespace EdgeTune.Nn;

/// <summary>A token embedding table [V, C] as a module: a float table (<see cref="TokenEmbedding"/>) or a
/// quantized one; the model calls it without knowing which.</summary>
public interface IEmbedding : IModule
{
    /// <summary>The HF module name ("model.embed_tokens").</summary>
    string Name { get; }
    int VocabSize { get; }
    int Dim { get; }

    /// <summary>The parameter that stores the table (its float values, or its quantized bytes).</summary>
    Parameter Weight { get; }

    /// <summary>Inference: x[T, C] = rows of the table for <paramref name="ids"/>.</summary>
    void Forward(ReadOnlySpan<int> ids, Span<float> x);

    /// <summary>Training: (N, C) rows for ids [N], recorded on the tape.</summary>
    Variable Forward(Tape tape, int[] ids);
}

/// <summary>The output head [V, C] as a module (possibly the embedding's table, tied): logits for inference and
/// the fused, vocabulary-chunked cross-entropy for training (no [N, V] logits tensor exists).</summary>
public interface IOutputHead : IModule
{
    /// <summary>The HF module name ("lm_head", or the embedding's name when tied).</summary>
    string Name { get; }
    int VocabSize { get; }
    int Dim { get; }

    /// <summary>The parameter that stores the head (the embedding's when tied).</summary>
    Parameter Weight { get; }

    /// <summary>logits[R, V] = x[R, C]·Wᵀ.</summary>
    void Forward(ReadOnlySpan<float> x, Span<float> logits, int rows);

    /// <summary>Mean cross-entropy of <paramref name="targets"/> [N] under h (N, C)·Wᵀ, chunked over the vocabulary.</summary>
    Variable Loss(Tape tape, Variable h, int[] targets, int vocabChunk);
}
