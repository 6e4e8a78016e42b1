using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// FedAvg (McMahan et al. 2017): the next global is the current one plus the mean of the clients'
/// deltas weighted by their example counts. Accumulated in double, rounded to float once.
/// </summary>
public class FedAvgStrategy : IAggregationStrategy
{
    public virtual string Name => "fedavg";

    public virtual float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates);
        return RoundChecks.Apply(global, RoundChecks.WeightedMeanDelta(global.Length, updates));
    }
}
