namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// One client's contribution to a round: the change it made to the global adapter
/// (<c>local − global</c>, flat, in the round's <see cref="UpdateLayout"/>) and how many training
/// examples produced it (FedAvg's weight).
/// </summary>
public sealed record ClientUpdate(string ClientId, float[] Delta, long NumExamples)
{
    /// <summary>Optional client-reported metrics (training loss ...), aggregated for display only.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}
