namespace EdgeTune.Energy;

/// <summary>How energy is turned into reported figures.</summary>
/// <param name="GridIntensityGramsPerKwh">Grams of CO2-equivalent per kWh of electricity. The default,
/// 400 g/kWh, is a round figure near the world-average grid of recent years; it is only a default and
/// reports say so. Set it to your grid's figure (e.g. ~30 for Norway or France, ~700 for coal-heavy grids).</param>
/// <param name="GridIntensityIsDefault">True while the intensity is the built-in default; reports show
/// "(default grid intensity)" then. Use <see cref="WithGridIntensity"/> to set a real one.</param>
public sealed record EnergyAccountingOptions(
    double GridIntensityGramsPerKwh = EnergyAccountingOptions.DefaultGridIntensityGramsPerKwh,
    bool GridIntensityIsDefault = true)
{
    /// <summary>The default grid intensity, g CO2e per kWh.</summary>
    public const double DefaultGridIntensityGramsPerKwh = 400;

    public static EnergyAccountingOptions Default { get; } = new();

    /// <summary>Options with a user-given grid intensity (not flagged as the default).</summary>
    public static EnergyAccountingOptions WithGridIntensity(double gramsPerKwh) => new(gramsPerKwh, false);

    /// <summary>Throws with the field name when a value is out of range.</summary>
    public void Validate()
    {
        if (!(GridIntensityGramsPerKwh >= 0) || double.IsInfinity(GridIntensityGramsPerKwh))
            throw new ArgumentOutOfRangeException(nameof(GridIntensityGramsPerKwh), GridIntensityGramsPerKwh,
                "grid intensity must be a finite number of g CO2e per kWh >= 0");
    }

    /// <summary>Grams of CO2e for <paramref name="joules"/>.</summary>
    public double Co2eGrams(double joules) => joules / EnergyUnits.JoulesPerKilowattHour * GridIntensityGramsPerKwh;
}
