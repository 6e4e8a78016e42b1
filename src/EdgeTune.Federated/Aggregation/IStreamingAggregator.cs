using Orleans;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// A strategy that aggregates a round as its updates arrive: <see cref="Begin"/> opens the round,
/// <see cref="IRoundAggregation.Add"/> folds one accepted update into a running sum and keeps no
/// reference to its vector, <see cref="IRoundAggregation.Complete"/> turns the sum into the next global.
/// Memory is O(model) per round whatever the number of clients. The mean-based strategies (FedAvg,
/// FedProx, FedAdam, FedYogi, DP wrappers) implement it, and their batch <see cref="IAggregationStrategy.Aggregate"/>
/// runs the same path. The robust strategies (median, trimmed mean, Krum) need every update at once and do not:
/// the server spills a round's decoded updates to a scratch file at the close and they read it by blocks of
/// coordinates (<see cref="IColumnAggregator"/>, at most <see cref="UpdateBlocks.BudgetBytes"/> of update values in memory).
/// </summary>
public interface IStreamingAggregator : IAggregationStrategy
{
    /// <summary>Starts aggregating <paramref name="round"/> from <paramref name="global"/> (copied). Strategy state that
    /// lasts across rounds (server optimizer moments) changes only in <see cref="IRoundAggregation.Complete"/>.</summary>
    IRoundAggregation Begin(int round, ReadOnlySpan<float> global);
}

/// <summary>One round being aggregated by an <see cref="IStreamingAggregator"/>.</summary>
public interface IRoundAggregation
{
    int Round { get; }

    /// <summary>Updates folded in so far.</summary>
    int Count { get; }

    /// <summary>Bytes the aggregation holds (its running sum and the copy of the global), independent of <see cref="Count"/>.</summary>
    long RetainedBytes { get; }

    /// <summary>Folds <paramref name="update"/> in (validated as <see cref="IAggregationStrategy.Aggregate"/> would).
    /// The delta is read during the call only; no reference to it is kept. Throws when the update is unusable
    /// (wrong length, non-positive example count where weights are needed); the sum is then unchanged.</summary>
    void Add(ClientUpdate update);

    /// <summary>The next global vector; applies cross-round state changes (server optimizer step, DP accounting).
    /// Throws when no update was added. Call once.</summary>
    float[] Complete();

    /// <summary>The running sum so far, as a partial sum another aggregation of the same round can <see cref="Merge"/>
    /// (a shard of the round's clients hands it to the one that completes the round). The sum is copied.</summary>
    PartialSum Partial();

    /// <summary>Adds a shard's partial sum, as if its updates had been added here one by one.</summary>
    void Merge(PartialSum partial);
}

/// <summary>A shard's running sum of a round: Σ wᵢ·f(δᵢ) (f: the strategy's per-update step, e.g. DP clipping), Σ wᵢ, the
/// number of updates and how many of them the per-update step changed (clipped).</summary>
[GenerateSerializer]
public sealed record PartialSum([property: Id(0)] double[] Sum, [property: Id(1)] double Weight, [property: Id(2)] int Count, [property: Id(3)] int Clipped = 0);
