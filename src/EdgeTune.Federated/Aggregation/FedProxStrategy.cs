namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// FedProx (Li et al. 2020): FedAvg aggregation, while clients add the proximal term
/// μ/2·‖w − w_global‖² to their local loss (see <see cref="ProximalTerm"/>), which keeps local
/// models near the global one on heterogeneous data. <see cref="ConfigureFit"/> sends μ.
/// </summary>
public sealed class FedProxStrategy : FedAvgStrategy, IAggregationStrategy
{
    public FedProxStrategy(double mu)
    {
        if (!(mu >= 0) || double.IsInfinity(mu)) throw new ArgumentOutOfRangeException(nameof(mu), mu, "FedProx: μ must be finite and ≥ 0");
        Mu = mu;
    }

    public double Mu { get; }

    public override string Name => "fedprox";

    public FitInstructions ConfigureFit(int round, FitInstructions defaults) => defaults with { ProximalMu = Mu };
}
