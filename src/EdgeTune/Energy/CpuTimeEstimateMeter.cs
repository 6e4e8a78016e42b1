using System.Diagnostics;

namespace EdgeTune.Energy;

/// <summary>An ESTIMATE of the energy this process makes the CPU spend: its CPU time (all threads) ×
/// watts per core from a <see cref="DeviceProfile"/>. It ignores idle/uncore/memory power and other
/// processes, and real per-core power varies with clock and load, so it is only used when no sensor
/// exists, and is labelled as an estimate everywhere it is shown.</summary>
public sealed class CpuTimeEstimateMeter : IEnergyMeter
{
    private readonly object _gate = new();
    private readonly Func<TimeSpan> _cpuTime;
    private TimeSpan? _first;
    private double _joules;

    /// <param name="profile">Power model; <see cref="DeviceProfile.Default"/> when null.</param>
    /// <param name="cpuTime">Total processor time consumed so far (defaults to this process's
    /// <see cref="Process.TotalProcessorTime"/>); injectable for tests.</param>
    public CpuTimeEstimateMeter(DeviceProfile? profile = null, Func<TimeSpan>? cpuTime = null)
    {
        Profile = profile ?? DeviceProfile.Default;
        _cpuTime = cpuTime ?? CurrentProcessCpuTime;
        Scope = new EnergyScope(MeasureKind.Estimate,
            $"ESTIMATE: this process's CPU time × {Profile.WattsPerCore:0.##} W per core ({Profile.Name})",
            "Process.TotalProcessorTime");
    }

    public DeviceProfile Profile { get; }

    public string Id => "estimate:cpu-time";

    public EnergyScope Scope { get; }

    public bool IsEstimate => true;

    public MeterAvailability Availability => MeterAvailability.Available;

    public double ReadJoules()
    {
        lock (_gate)
        {
            var t = _cpuTime();
            _first ??= t;
            // Never decrease, even if the source misbehaves.
            _joules = Math.Max(_joules, (t - _first.Value).TotalSeconds * Profile.WattsPerCore);
            return _joules;
        }
    }

    private static TimeSpan CurrentProcessCpuTime()
    {
        using var p = Process.GetCurrentProcess();
        return p.TotalProcessorTime;
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}";
}
