namespace EdgeTune.Energy;

/// <summary>What a policy sees between two training steps.</summary>
/// <param name="State">AC, battery, temperature now.</param>
/// <param name="AverageWatts">Average power measured since the previous evaluation (null on the first).</param>
/// <param name="JoulesSpent">Energy used by the run so far.</param>
/// <param name="EnergyIsEstimate">True when the energy figures are estimated.</param>
/// <param name="Now">The engine clock's monotonic time.</param>
/// <param name="LastStepSeconds">Compute time of the previous step (without any duty-cycle sleep), if known.</param>
/// <param name="LastStepJoules">Energy since the previous evaluation, if known.</param>
/// <param name="MaxThreads">Threads the run uses when not throttled.</param>
public sealed record PolicyContext(
    PowerState State,
    double? AverageWatts,
    double JoulesSpent,
    bool EnergyIsEstimate,
    TimeSpan Now,
    double? LastStepSeconds,
    double? LastStepJoules,
    int MaxThreads);

/// <summary>A rule about power, evaluated between training steps. Policies may keep state (hysteresis),
/// so each run gets its own instances.</summary>
public interface IPowerPolicy
{
    /// <summary>A short name for logs, e.g. "min-battery 30%".</summary>
    string Name { get; }

    PolicyDecision Evaluate(PolicyContext context);
}
