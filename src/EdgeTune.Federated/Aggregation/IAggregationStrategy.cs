namespace EdgeTune.Federated.Aggregation;

/// <summary>What a client is told to do in a round (the strategy may adjust it, e.g. FedProx's μ).</summary>
public sealed record FitInstructions
{
    public int LocalSteps { get; init; } = 20;
    public double LearningRate { get; init; } = 1e-3;
    public int BatchSize { get; init; } = 4;
    public int SequenceLength { get; init; } = 128;
    /// <summary>FedProx proximal coefficient μ: the client adds μ/2·‖w − w_global‖² to its loss (0 = off).</summary>
    public double ProximalMu { get; init; }
    /// <summary>Per-round seed (data order, dropout), derived from the server's seed and the round.</summary>
    public int Seed { get; init; }
}

/// <summary>
/// A federated strategy: configures each round for clients and turns the round's accepted updates
/// into the next global adapter. Aggregation is pure math (no I/O), tested without a network.
/// Strategies that keep state across rounds (server optimizer moments) expose it for persistence,
/// so a restarted server continues exactly.
/// </summary>
public interface IAggregationStrategy
{
    /// <summary>Short name used in options and logs ("fedavg", "fedprox", "fedadam", "fedyogi", "median", "trimmed-mean", "krum").</summary>
    string Name { get; }

    /// <summary>The instructions clients train with in <paramref name="round"/> (1-based).</summary>
    FitInstructions ConfigureFit(int round, FitInstructions defaults) => defaults;

    /// <summary>
    /// The next global vector from the current <paramref name="global"/> and the round's updates (all
    /// already validated: same length as <paramref name="global"/>, finite). Must not modify its inputs.
    /// </summary>
    float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates);

    /// <summary>Weighted mean of clients' evaluation metrics (by example count).</summary>
    IReadOnlyDictionary<string, double> AggregateEvaluation(IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> results)
    {
        var sums = new Dictionary<string, double>();
        var weights = new Dictionary<string, double>();
        foreach (var (n, metrics) in results)
            foreach (var (key, value) in metrics)
            {
                sums[key] = sums.GetValueOrDefault(key) + n * value;
                weights[key] = weights.GetValueOrDefault(key) + n;
            }
        return sums.ToDictionary(kv => kv.Key, kv => weights[kv.Key] > 0 ? kv.Value / weights[kv.Key] : double.NaN);
    }

    /// <summary>State to persist after each round (null when stateless). A stateful strategy returns its state also before
    /// its first round: the server takes it before each close and puts it back when the close fails in the store.</summary>
    byte[]? SaveState() => null;

    /// <summary>Restores what <see cref="SaveState"/> returned.</summary>
    void LoadState(byte[] state) { }
}
