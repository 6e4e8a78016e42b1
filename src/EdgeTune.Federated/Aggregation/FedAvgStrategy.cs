using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// FedAvg (McMahan et al. 2017): the next global is the current one plus the mean of the clients'
/// deltas weighted by their example counts. Streams (<see cref="IStreamingAggregator"/>): each update is
/// folded into a running weighted sum in double as it arrives; rounded to float once, at the end.
/// </summary>
public class FedAvgStrategy : IStreamingAggregator
{
    public virtual string Name => "fedavg";

    public IRoundAggregation Begin(int round, ReadOnlySpan<float> global) => new Round(Name, round, global);

    public virtual float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates);
        var r = Begin(round, global);
        foreach (var u in updates) r.Add(u);
        return r.Complete();
    }

    private sealed class Round(string name, int round, ReadOnlySpan<float> global) : IRoundAggregation
    {
        private readonly float[] _global = global.ToArray();
        private readonly WeightedSum _sum = new(name, round, global.Length);

        int IRoundAggregation.Round => round;
        public int Count => _sum.Count;
        public long RetainedBytes => _sum.RetainedBytes + 4L * _global.Length;
        public void Add(ClientUpdate update) => _sum.Add(update);
        public float[] Complete() => RoundChecks.Apply(_global, _sum.TakeMean());
        public PartialSum Partial() => _sum.Partial();
        public void Merge(PartialSum partial) => _sum.Merge(partial);
    }
}
