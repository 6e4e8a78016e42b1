namespace EdgeTune.Federated.Aggregation;

/// <summary>Settings read by <see cref="StrategyFactory"/>; each strategy uses the ones it needs.</summary>
public sealed record StrategyOptions
{
    /// <summary>FedProx μ.</summary>
    public double ProximalMu { get; init; } = 0.01;
    /// <summary>FedAdam/FedYogi server optimizer.</summary>
    public ServerOptimizerOptions ServerOptimizer { get; init; } = new();
    /// <summary>Trimmed mean: fraction trimmed from each side.</summary>
    public double TrimBeta { get; init; } = 0.1;
    /// <summary>Krum: Byzantine clients tolerated (f).</summary>
    public int Byzantine { get; init; } = 1;
    /// <summary>Multi-Krum: updates averaged (m; "krum" always uses 1).</summary>
    public int MultiKrumSelect { get; init; } = 2;
}
