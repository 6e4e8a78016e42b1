namespace EdgeTune.Energy;

/// <summary>Energy drawn from a Linux battery (/sys/class/power_supply/BATn) while it discharges: the
/// whole machine's consumption when off mains. The counter integrates the reported power over time
/// (trapezoid rule between readings, power counted as 0 while not discharging), so it advances only when
/// read; read it at least every few seconds (each training step does). Where the battery reports its
/// stored energy (<c>energy_now</c>/<c>charge_now</c>), <see cref="StoredEnergyDischargeJoules"/> sums
/// the drops of that figure too, a coarser second opinion. On mains power the counter stands still:
/// the battery then does not see the machine's consumption.</summary>
public sealed class BatteryMeter : IEnergyMeter
{
    private readonly object _gate = new();
    private readonly SysfsRoot _sysfs;
    private readonly IClock _clock;
    private TimeSpan? _lastTime;
    private double _lastPower;
    private double? _lastStored;
    private double _joules;
    private double _storedDischarge;

    public BatteryMeter(SysfsRoot sysfs, string supplyFolder, IClock? clock = null)
    {
        _sysfs = sysfs;
        _clock = clock ?? SystemClock.Instance;
        SupplyFolder = supplyFolder;
        Name = Path.GetFileName(supplyFolder.TrimEnd('/'));
        Scope = new EnergyScope(MeasureKind.Battery, $"battery {Name} discharge (whole machine, off mains only)",
            Path.Combine(supplyFolder, "power_now|current_now*voltage_now"));
    }

    public string SupplyFolder { get; }

    public string Name { get; }

    public string Id => "battery:" + Name;

    public EnergyScope Scope { get; }

    public bool IsEstimate => false;

    /// <summary>The last reading taken by <see cref="ReadJoules"/> or <see cref="Read"/>.</summary>
    public PowerSupplyReading? Last { get; private set; }

    /// <summary>Energy discharged according to drops of <c>energy_now</c> (null when the battery does not report it).</summary>
    public double? StoredEnergyDischargeJoules { get { lock (_gate) return _lastStored is null ? null : _storedDischarge; } }

    public MeterAvailability Availability
    {
        get
        {
            var r = PowerSupplyReading.Read(_sysfs, SupplyFolder);
            if (r.PowerWatts is null)
                return MeterAvailability.Unavailable(
                    $"{SupplyFolder}: neither power_now nor current_now with voltage_now can be read");
            return MeterAvailability.Available;
        }
    }

    /// <summary>Reads the battery now and updates the counters.</summary>
    public PowerSupplyReading Read()
    {
        lock (_gate)
        {
            var r = PowerSupplyReading.Read(_sysfs, SupplyFolder);
            var now = _clock.Elapsed;
            bool discharging = r.Status == BatteryStatus.Discharging;
            double power = discharging ? r.PowerWatts ?? 0 : 0;
            if (_lastTime is TimeSpan t)
            {
                double dt = (now - t).TotalSeconds;
                if (dt > 0) _joules += 0.5 * (_lastPower + power) * dt;
            }
            if (r.EnergyJoules is double stored)
            {
                if (_lastStored is double prev && stored < prev && discharging) _storedDischarge += prev - stored;
                _lastStored = stored;
            }
            _lastTime = now;
            _lastPower = power;
            Last = r;
            return r;
        }
    }

    public double ReadJoules()
    {
        lock (_gate)
        {
            var r = Read();
            if (r.PowerWatts is null && r.Status == BatteryStatus.Discharging)
                throw new EnergyMeterException(
                    $"{SupplyFolder}: the battery is discharging but reports no power_now (nor current_now with voltage_now)");
            return _joules;
        }
    }

    /// <summary>A meter for every supply of type "Battery" under <c>sys/class/power_supply</c>.</summary>
    public static IReadOnlyList<BatteryMeter> Discover(SysfsRoot sysfs, IClock? clock = null)
    {
        var result = new List<BatteryMeter>();
        foreach (var dir in sysfs.Subdirectories(sysfs.Resolve("sys/class/power_supply")))
        {
            var type = sysfs.TryReadText(Path.Combine(dir, "type"));
            if (string.Equals(type, "Battery", StringComparison.OrdinalIgnoreCase))
            {
                // Peripheral batteries (mouse, headset) have scope "Device"; only the system battery counts.
                var scope = sysfs.TryReadText(Path.Combine(dir, "scope"));
                if (string.Equals(scope, "Device", StringComparison.OrdinalIgnoreCase)) continue;
                result.Add(new BatteryMeter(sysfs, dir, clock));
            }
        }
        return result;
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}";
}
