namespace EdgeTune.Energy;

/// <summary>An energy counter: joules that only go up, from a sensor or, when none exists, an estimate.
/// Consumers take differences between two readings; the origin is not meaningful (most meters start
/// at 0 on their first reading). Implementations are thread-safe.</summary>
public interface IEnergyMeter
{
    /// <summary>A short stable identifier, e.g. "rapl:intel-rapl:0", "battery:BAT0", "gpu:0", "estimate:cpu-time".</summary>
    string Id { get; }

    /// <summary>What the meter measures and where it reads from.</summary>
    EnergyScope Scope { get; }

    /// <summary>True when the number is modelled, not measured; every display of it must say so.</summary>
    bool IsEstimate { get; }

    /// <summary>Whether readings can be taken now, and why not.</summary>
    MeterAvailability Availability { get; }

    /// <summary>The counter in joules (monotonic, never decreasing).</summary>
    /// <exception cref="EnergyMeterException">The meter cannot be read (see <see cref="Availability"/>).</exception>
    double ReadJoules();
}
