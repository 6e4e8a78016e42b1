namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Hyper-parameters of the adaptive server optimizers (Reddi et al. 2021, "Adaptive Federated
/// Optimization"): server learning rate η, moment decays β1 and β2, adaptivity τ (the second moment
/// starts at τ², and τ is added to √v in the step).
/// </summary>
public sealed record ServerOptimizerOptions
{
    public double Eta { get; init; } = 1e-2;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.99;
    public double Tau { get; init; } = 1e-3;

    internal void Validate(string strategy)
    {
        if (!(Eta > 0) || double.IsInfinity(Eta)) throw new ArgumentOutOfRangeException(nameof(Eta), Eta, $"{strategy}: η must be finite and > 0");
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, $"{strategy}: β1 must be in [0, 1)");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, $"{strategy}: β2 must be in [0, 1)");
        if (!(Tau > 0) || double.IsInfinity(Tau)) throw new ArgumentOutOfRangeException(nameof(Tau), Tau, $"{strategy}: τ must be finite and > 0");
    }
}
