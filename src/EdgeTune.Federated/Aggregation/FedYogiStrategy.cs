namespace EdgeTune.Federated.Aggregation;

/// <summary>FedYogi: the Yogi second moment <c>v = v − (1−β2)·Δ²·sign(v − Δ²)</c> (Reddi et al. 2021),
/// which grows v additively rather than multiplicatively and so reacts more gently to rare large Δ.</summary>
public sealed class FedYogiStrategy(ServerOptimizerOptions? options = null) : AdaptiveServerStrategy(options)
{
    public override string Name => "fedyogi";

    protected override double UpdateSecondMoment(double v, double deltaSquared, double beta2) =>
        v - (1 - beta2) * deltaSquared * Math.Sign(v - deltaSquared);
}
