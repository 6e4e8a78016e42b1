using System.Numerics;
using System.Runtime.InteropServices;
using EdgeTune.Tensors;

namespace EdgeTune.Federated.Aggregation.Internal;

/// <summary>
/// A running Σ wᵢ·δᵢ and Σ wᵢ in double: the state of a streaming mean. Summing in double makes the
/// result independent of the order of arrival up to double rounding, far below the final cast to float.
/// </summary>
internal sealed class WeightedSum(string strategy, int round, int length)
{
    private readonly double[] _sum = new double[length];
    private bool _completed;

    public int Length => _sum.Length;
    public int Count { get; private set; }
    public double TotalWeight { get; private set; }
    public long RetainedBytes => 8L * _sum.Length;

    /// <summary>Checks the update as <see cref="RoundChecks.Require"/> does, then adds weight × delta.</summary>
    public void Add(ClientUpdate update, bool needExamples = true) =>
        Add(update, needExamples ? update?.NumExamples ?? 0 : 1, needExamples);

    /// <summary>Adds <paramref name="weight"/> × delta after the same checks.</summary>
    public void Add(ClientUpdate update, double weight, bool needExamples)
    {
        if (_completed) throw new InvalidOperationException($"{strategy}: round {round} is already complete");
        if (update is null) throw new ArgumentException($"{strategy}: round {round} contains a null update");
        var d = update.Delta ?? throw new ArgumentException($"{strategy}: round {round}: client '{update.ClientId}' sent no delta");
        if (d.Length != _sum.Length)
            throw new ShapeException($"{strategy}: round {round}: client '{update.ClientId}' delta has {d.Length} values but the global vector has {_sum.Length}");
        if (needExamples && update.NumExamples <= 0)
            throw new ArgumentException($"{strategy}: round {round}: client '{update.ClientId}' reports {update.NumExamples} examples; a positive count is expected");
        AddRaw(d, weight);
    }

    /// <summary>Adds weight × values with no checks beyond the length.</summary>
    public void AddRaw(ReadOnlySpan<float> values, double weight)
    {
        if (values.Length != _sum.Length) throw new ShapeException($"{strategy}: {values.Length} values; {_sum.Length} expected");
        var s = _sum.AsSpan();
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            // the same per-element operations as the scalar loop (a product, then a sum; no fused multiply-add), so the
            // result is bit for bit the same; the fold of each accepted update runs in the aggregator's turn
            var w = new Vector<double>(weight);
            var sums = MemoryMarshal.Cast<double, Vector<double>>(s);
            var floats = MemoryMarshal.Cast<float, Vector<float>>(values);
            for (int v = 0; v < floats.Length; v++)
            {
                Vector.Widen(floats[v], out var lo, out var hi);
                sums[2 * v] += w * lo;
                sums[2 * v + 1] += w * hi;
            }
            i = floats.Length * Vector<float>.Count;
        }
        for (; i < s.Length; i++) s[i] += weight * values[i];
        TotalWeight += weight;
        Count++;
    }

    /// <summary>A copy of the running sum as a partial sum.</summary>
    public PartialSum Partial(int clipped = 0)
    {
        if (_completed) throw new InvalidOperationException($"{strategy}: round {round} is already complete");
        return new PartialSum((double[])_sum.Clone(), TotalWeight, Count, clipped);
    }

    /// <summary>Adds another shard's partial sum of the same round.</summary>
    public void Merge(PartialSum partial)
    {
        ArgumentNullException.ThrowIfNull(partial);
        if (_completed) throw new InvalidOperationException($"{strategy}: round {round} is already complete");
        if (partial.Sum.Length != _sum.Length) throw new ShapeException($"{strategy}: round {round}: a partial sum has {partial.Sum.Length} values; {_sum.Length} expected");
        var s = _sum.AsSpan();
        for (int i = 0; i < s.Length; i++) s[i] += partial.Sum[i];
        TotalWeight += partial.Weight;
        Count += partial.Count;
    }

    /// <summary>The raw sum (for noise before the division); usable until <see cref="TakeMean"/>.</summary>
    public Span<double> Sum => _sum;

    /// <summary>Σ wᵢ·δᵢ / Σ wᵢ, in place; the sum is spent afterwards.</summary>
    public double[] TakeMean() => TakeDividedBy(TotalWeight);

    /// <summary>The sum divided by <paramref name="divisor"/>, in place; the sum is spent afterwards.</summary>
    public double[] TakeDividedBy(double divisor)
    {
        if (_completed) throw new InvalidOperationException($"{strategy}: round {round} is already complete");
        if (Count == 0) throw new ArgumentException($"{strategy}: round {round} has no client updates to aggregate");
        _completed = true;
        for (int i = 0; i < _sum.Length; i++) _sum[i] /= divisor;
        return _sum;
    }
}
