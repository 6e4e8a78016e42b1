namespace EdgeTune.Energy;

/// <summary>An NVIDIA GPU read by running nvidia-smi (the fallback when NVML cannot be bound). The
/// counter integrates the reported power between readings (trapezoid rule). Each reading starts a
/// process (tens of milliseconds), so read it once per step, not in tight loops.</summary>
public sealed class NvidiaSmiGpuMeter : IEnergyMeter
{
    private readonly object _gate = new();
    private readonly Func<string> _query;
    private readonly IClock _clock;
    private TimeSpan? _lastTime;
    private double _lastPower;
    private double _joules;

    /// <param name="index">The GPU's line in the query output.</param>
    /// <param name="query">Returns the query output (runs nvidia-smi; tests pass canned text).</param>
    /// <param name="source">What to show as the source, e.g. the nvidia-smi path.</param>
    public NvidiaSmiGpuMeter(int index, Func<string> query, IClock? clock = null, string source = "nvidia-smi")
    {
        Index = index;
        _query = query;
        _clock = clock ?? SystemClock.Instance;
        Scope = new EnergyScope(MeasureKind.Gpu, $"GPU {index} (board, via nvidia-smi)", $"{source} {NvidiaSmi.QueryArguments}");
    }

    public int Index { get; }

    public string Id => $"gpu:{Index}";

    public EnergyScope Scope { get; }

    public bool IsEstimate => false;

    public MeterAvailability Availability => MeterAvailability.Available;

    /// <summary>The latest sample for this GPU.</summary>
    public NvidiaSmiSample Sample()
    {
        var all = NvidiaSmi.Parse(_query());
        if (Index >= all.Count) throw new EnergyMeterException($"{Id}: nvidia-smi lists {all.Count} GPU(s)");
        return all[Index];
    }

    public double ReadJoules()
    {
        lock (_gate)
        {
            var p = Sample().PowerWatts ?? throw new EnergyMeterException($"{Id}: nvidia-smi reports no power.draw for this GPU");
            var now = _clock.Elapsed;
            if (_lastTime is TimeSpan t) _joules += 0.5 * (_lastPower + p) * Math.Max(0, (now - t).TotalSeconds);
            _lastTime = now;
            _lastPower = p;
            return _joules;
        }
    }

    /// <summary>One meter per GPU listed by nvidia-smi on PATH, or none with the reason.</summary>
    public static (IReadOnlyList<NvidiaSmiGpuMeter> Meters, string? Reason) Discover(IClock? clock = null)
    {
        var path = NvidiaSmi.Locate();
        if (path is null) return ([], "nvidia-smi is not on PATH");
        IReadOnlyList<NvidiaSmiSample> samples;
        try { samples = NvidiaSmi.Parse(NvidiaSmi.RunQuery(path)); }
        catch (Exception e) when (e is EnergyMeterException or FormatException or System.ComponentModel.Win32Exception)
        {
            return ([], e.Message);
        }
        var meters = samples.Where(s => s.PowerWatts is not null)
            .Select(s => new NvidiaSmiGpuMeter(s.Index, () => NvidiaSmi.RunQuery(path), clock, path)).ToList();
        return (meters, meters.Count == 0 ? "nvidia-smi lists no GPU that reports power.draw" : null);
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}";
}
