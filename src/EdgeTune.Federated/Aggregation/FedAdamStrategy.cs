namespace EdgeTune.Federated.Aggregation;

/// <summary>FedAdam: the Adam second moment <c>v = β2·v + (1−β2)·Δ²</c> (Reddi et al. 2021).</summary>
public sealed class FedAdamStrategy(ServerOptimizerOptions? options = null) : AdaptiveServerStrategy(options)
{
    public override string Name => "fedadam";

    protected override double UpdateSecondMoment(double v, double deltaSquared, double beta2) =>
        beta2 * v + (1 - beta2) * deltaSquared;
}
