using EdgeTune.Energy.Internal;

namespace EdgeTune.Energy;

/// <summary>An NVIDIA GPU read through NVML (the library behind nvidia-smi), bound at run time. Uses the
/// board's own energy counter (<c>nvmlDeviceGetTotalEnergyConsumption</c>, mJ, Volta and newer) when it
/// has one, else integrates <c>nvmlDeviceGetPowerUsage</c> (mW) between readings.</summary>
public sealed class NvmlGpuMeter : IEnergyMeter
{
    private readonly object _gate = new();
    private readonly NvmlLibrary _nvml;
    private readonly nint _device;
    private readonly IClock _clock;
    private ulong? _firstMillijoules;
    private TimeSpan? _lastTime;
    private double _lastPower;
    private double _joules;

    private NvmlGpuMeter(NvmlLibrary nvml, nint device, int index, IClock clock)
    {
        _nvml = nvml;
        _device = device;
        _clock = clock;
        Index = index;
        Name = nvml.Name(device);
        HasEnergyCounter = nvml.TotalEnergyMillijoules(device) is not null;
        Scope = new EnergyScope(MeasureKind.Gpu, $"GPU {index} {Name} (board)",
            HasEnergyCounter ? "NVML nvmlDeviceGetTotalEnergyConsumption" : "NVML nvmlDeviceGetPowerUsage (integrated)");
    }

    public int Index { get; }

    public string Name { get; }

    /// <summary>True when the board has a hardware energy counter; false means power is integrated.</summary>
    public bool HasEnergyCounter { get; }

    public string Id => $"gpu:{Index}";

    public EnergyScope Scope { get; }

    public bool IsEstimate => false;

    public MeterAvailability Availability => MeterAvailability.Available;

    /// <summary>The board power now in watts, or null when not supported.</summary>
    public double? ReadPowerWatts() => _nvml.PowerMilliwatts(_device) is uint mw ? mw / 1000.0 : null;

    /// <summary>The GPU temperature now in °C, or null.</summary>
    public double? ReadTemperatureCelsius() => _nvml.TemperatureCelsius(_device) is uint t ? t : null;

    public double ReadJoules()
    {
        lock (_gate)
        {
            if (HasEnergyCounter)
            {
                var mj = _nvml.TotalEnergyMillijoules(_device)
                    ?? throw new EnergyMeterException($"{Id}: nvmlDeviceGetTotalEnergyConsumption failed");
                _firstMillijoules ??= mj;
                _joules = Math.Max(_joules, (mj - _firstMillijoules.Value) / 1000.0);
                return _joules;
            }
            var p = ReadPowerWatts() ?? throw new EnergyMeterException($"{Id}: nvmlDeviceGetPowerUsage failed");
            var now = _clock.Elapsed;
            if (_lastTime is TimeSpan t) _joules += 0.5 * (_lastPower + p) * Math.Max(0, (now - t).TotalSeconds);
            _lastTime = now;
            _lastPower = p;
            return _joules;
        }
    }

    /// <summary>One meter per NVIDIA GPU, or none with the reason (no library, no driver, no GPU).</summary>
    public static (IReadOnlyList<NvmlGpuMeter> Meters, string? Reason) Discover(IClock? clock = null)
    {
        var (nvml, reason) = NvmlLibrary.TryGet();
        if (nvml is null) return ([], reason);
        var result = new List<NvmlGpuMeter>();
        int n = nvml.DeviceCount();
        for (int i = 0; i < n; i++)
            if (nvml.Handle(i) is nint h)
                result.Add(new NvmlGpuMeter(nvml, h, i, clock ?? SystemClock.Instance));
        return (result, result.Count == 0 ? "NVML is loaded but reports no GPU" : null);
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}";
}
