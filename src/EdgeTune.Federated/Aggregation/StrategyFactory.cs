namespace EdgeTune.Federated.Aggregation;

/// <summary>Creates a strategy from its name (as given on the command line or in a config).</summary>
public static class StrategyFactory
{
    /// <summary>The accepted names.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["fedavg", "fedprox", "fedadam", "fedyogi", "median", "trimmed-mean", "krum", "multi-krum"];

    public static IAggregationStrategy Create(string name, StrategyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var o = options ?? new StrategyOptions();
        return name.Trim().ToLowerInvariant() switch
        {
            "fedavg" => new FedAvgStrategy(),
            "fedprox" => new FedProxStrategy(o.ProximalMu),
            "fedadam" => new FedAdamStrategy(o.ServerOptimizer),
            "fedyogi" => new FedYogiStrategy(o.ServerOptimizer),
            "median" => new MedianStrategy(),
            "trimmed-mean" or "trimmedmean" => new TrimmedMeanStrategy(o.TrimBeta),
            "krum" => new KrumStrategy(o.Byzantine, 1),
            "multi-krum" or "multikrum" => new KrumStrategy(o.Byzantine, o.MultiKrumSelect),
            _ => throw new ArgumentException($"unknown aggregation strategy '{name}'; expected one of {string.Join(", ", Names)}", nameof(name)),
        };
    }
}
