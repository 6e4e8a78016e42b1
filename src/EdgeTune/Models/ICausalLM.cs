using EdgeTune.Generation;

namespace EdgeTune.Models;

/// <summary>A decoder-only language model that can run incrementally over a <see cref="KvCache"/>.</summary>
public interface ICausalLM : IDisposable
{
    int VocabSize { get; }

    /// <summary>Largest number of positions the model supports.</summary>
    int MaxPositions { get; }

    /// <summary>A cache for up to <paramref name="capacity"/> positions.</summary>
    KvCache CreateCache(int capacity);

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions cache.Length.. in one batched pass, appends their
    /// keys and values to the cache, and writes the logits of the last <c>logits.Length / V</c>
    /// positions into <paramref name="logits"/> ([rows, V]).
    /// </summary>
    void Forward(ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits);
}
