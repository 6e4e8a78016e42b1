using EdgeTune.Federated.Aggregation;
using Orleans;

namespace EdgeTune.Federated.Server.Sharding;

/// <summary>One accepted update on its way to the shard that folds it (the delta is read during the fold only).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardUpdate(
    [property: Id(0)] string UploadId, [property: Id(1)] string ClientId, [property: Id(2)] long NumExamples,
    [property: Id(3)] float[] Delta, [property: Id(4)] double TrainLoss, [property: Id(5)] bool HasLoss);

/// <summary>What one shard folded in a round: its partial sum, the upload ids in it, and the clients' reported loss
/// (Σ loss·examples and Σ examples).</summary>
[GenerateSerializer, Immutable]
public sealed record ShardPartial(
    [property: Id(0)] int Round, [property: Id(1)] PartialSum Sum, [property: Id(2)] string[] UploadIds,
    [property: Id(3)] double LossSum, [property: Id(4)] double LossWeight);

/// <summary>
/// Where a server folds a round's accepted updates: the round's clients are split over <see cref="Count"/> shards by a
/// hash of the client id; each shard keeps a running partial sum (O(model), whatever the number of its clients) and the
/// upload ids in it; at the close the coordinator collects every shard's partial and merges them. In one process the
/// shards are objects (<see cref="LocalRoundShards"/>); on Orleans they are aggregator grains.
/// </summary>
internal interface IRoundShards
{
    int Count { get; }

    /// <summary>Folds an accepted update into its shard (idempotent by upload id). Throws ArgumentException when the
    /// strategy refuses the update (the shard is unchanged).</summary>
    void Fold(int round, ShardUpdate update);

    /// <summary>Every shard's partial of <paramref name="round"/> (shards with nothing for the round give none) and clears
    /// them.</summary>
    IReadOnlyList<ShardPartial> Collect(int round);

    /// <summary>Bytes held by the shards' running sums (diagnostics).</summary>
    long RetainedBytes { get; }

    /// <summary>Updates folded so far in the open round (diagnostics).</summary>
    int Folded { get; }
}

/// <summary>Shard index of a client: a stable hash of its id (FNV-1a), so every silo routes a client to the same shard.</summary>
internal static class ShardOf
{
    public static int Client(string clientId, int shards)
    {
        uint h = 2166136261;
        foreach (char c in clientId) { h ^= c; h *= 16777619; }
        return (int)(h % (uint)shards);
    }
}

/// <summary>One shard's running aggregation of a round (the state of an aggregator, in-process or in a grain). Not
/// thread-safe: its owner serialises calls.</summary>
internal sealed class AggregatorShard(IStreamingAggregator strategy, int length)
{
    private IRoundAggregation? _agg;
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private double _lossSum, _lossWeight;

    public int Round => _agg?.Round ?? 0;
    public int Count => _ids.Count;
    public long RetainedBytes => _agg?.RetainedBytes ?? 0;

    public void Fold(int round, ShardUpdate u)
    {
        if (_agg is not null && _agg.Round != round) Clear(); // an older round's leftovers (its close collected them or failed)
        if (_ids.Contains(u.UploadId)) return; // a retried fold: counted once
        // the shard never completes the round, so the global it starts from does not matter: only its length does
        _agg ??= strategy.Begin(round, new float[length]);
        _agg.Add(new ClientUpdate(u.ClientId, u.Delta, u.NumExamples));
        _ids.Add(u.UploadId);
        if (u.HasLoss) { _lossSum += u.TrainLoss * Math.Max(1, u.NumExamples); _lossWeight += Math.Max(1, u.NumExamples); }
    }

    /// <summary>The shard's partial of <paramref name="round"/> (null when it holds none) without clearing it.</summary>
    public ShardPartial? Peek(int round) =>
        _agg is { } a && a.Round == round && _ids.Count > 0 ? new ShardPartial(round, a.Partial(), [.. _ids], _lossSum, _lossWeight) : null;

    public void Clear()
    {
        _agg = null;
        _ids.Clear();
        (_lossSum, _lossWeight) = (0, 0);
    }
}

/// <summary>The shards of a single-process server: objects in memory.</summary>
internal sealed class LocalRoundShards(IStreamingAggregator strategy, int length, int count = 1) : IRoundShards
{
    private readonly AggregatorShard[] _shards = Enumerable.Range(0, count).Select(_ => new AggregatorShard(strategy, length)).ToArray();

    public int Count => _shards.Length;

    public void Fold(int round, ShardUpdate update) => _shards[ShardOf.Client(update.ClientId, _shards.Length)].Fold(round, update);

    public IReadOnlyList<ShardPartial> Collect(int round)
    {
        var list = new List<ShardPartial>();
        foreach (var s in _shards)
        {
            if (s.Peek(round) is { } p) list.Add(p);
            s.Clear();
        }
        return list;
    }

    public long RetainedBytes => _shards.Sum(s => s.RetainedBytes);

    public int Folded => _shards.Sum(s => s.Count);
}

/// <summary>A shard could not be reached (its silo is gone); what it held is folded again from the store at the close.</summary>
internal sealed class ShardUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
