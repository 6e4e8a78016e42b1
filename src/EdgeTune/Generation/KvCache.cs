using EdgeTune.Tensors;

namespace EdgeTune.Generation;

/// <summary>
/// Keys and values of every layer for the positions seen so far (batch 1): per layer two arrays
/// [Capacity, Hkv, D]. <see cref="Length"/> is the number of positions filled.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    public KvCache(int layers, int capacity, int kvHeads, int headDim)
    {
        if (layers <= 0 || capacity <= 0 || kvHeads <= 0 || headDim <= 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), $"KvCache: layers={layers}, capacity={capacity}, kvHeads={kvHeads}, headDim={headDim} must all be positive");
        Layers = layers; Capacity = capacity; KvHeads = kvHeads; HeadDim = headDim;
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = Tensor.Zeros(DType.F32, [capacity, kvHeads, headDim], $"cache.k.{l}");
            _values[l] = Tensor.Zeros(DType.F32, [capacity, kvHeads, headDim], $"cache.v.{l}");
        }
    }

    public int Layers { get; }
    public int Capacity { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }

    /// <summary>Positions filled.</summary>
    public int Length { get; private set; }

    /// <summary>Bytes held by the cache.</summary>
    public long Bytes => 2L * Layers * Capacity * KvHeads * HeadDim * sizeof(float);

    public Span<float> Keys(int layer) => _keys[layer].Span<float>();
    public Span<float> Values(int layer) => _values[layer].Span<float>();

    /// <summary>Throws unless <paramref name="count"/> more positions fit.</summary>
    public void EnsureRoom(int count)
    {
        if (Length + count > Capacity)
            throw new InvalidOperationException($"KvCache: {Length} positions used + {count} new exceed the capacity {Capacity}");
    }

    /// <summary>Marks <paramref name="count"/> more positions as filled (after every layer wrote them).</summary>
    public void Advance(int count)
    {
        EnsureRoom(count);
        Length += count;
    }

    /// <summary>Forgets positions from <paramref name="length"/> on (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"KvCache: must be in [0, {Length}]");
        Length = length;
    }

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
