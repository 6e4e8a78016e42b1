namespace EdgeTune.Energy;

/// <summary>What discovery looks at. Defaults probe the real machine.</summary>
/// <param name="Sysfs">Root of the Linux readers; null = <see cref="SysfsRoot.FromEnvironment"/>.</param>
/// <param name="Clock">Clock for meters that integrate power; null = <see cref="SystemClock.Instance"/>.</param>
/// <param name="ProbeGpu">Look for NVIDIA GPUs (NVML, then nvidia-smi).</param>
/// <param name="Profile">Power model of the estimator; null = <see cref="DeviceProfile.Default"/>.</param>
/// <param name="CpuTime">CPU-time source of the estimator; null = this process.</param>
/// <param name="ForceLinuxReaders">Read sysfs even when not running on Linux (tests of fake trees do this
/// implicitly: the Linux readers run whenever the sysfs root has a sys/class folder).</param>
public sealed record EnergyDiscoveryOptions(
    SysfsRoot? Sysfs = null,
    IClock? Clock = null,
    bool ProbeGpu = true,
    DeviceProfile? Profile = null,
    Func<TimeSpan>? CpuTime = null,
    bool ForceLinuxReaders = false);

/// <summary>One meter found, and what it is for.</summary>
/// <param name="Meter">The meter.</param>
/// <param name="InTotal">Whether it is part of the chosen total.</param>
public sealed record DiscoveredMeter(IEnergyMeter Meter, bool InTotal)
{
    /// <summary>"id: label [kind] from source (estimate) — available/unavailable: reason (fix: ...)".</summary>
    public string Describe() =>
        $"{Meter.Id}: {Meter.Scope.Describe()}{(Meter.IsEstimate ? " (ESTIMATE)" : "")}{(InTotal ? " [in total]" : "")} - {Meter.Availability}";
}

/// <summary>All meters found on a machine, the best total among them, and the power state source.</summary>
/// <param name="Meters">Every meter found (readable or not), in discovery order.</param>
/// <param name="Total">The meter to account with: the best total that can be read.</param>
/// <param name="TotalExplanation">Why this total was chosen and what it covers.</param>
/// <param name="PowerState">Where AC/battery/temperature come from on this OS.</param>
/// <param name="Notes">What was looked for and not found (e.g. "GPU: nvidia-smi is not on PATH").</param>
public sealed record EnergyMeterSet(
    IReadOnlyList<DiscoveredMeter> Meters,
    IEnergyMeter Total,
    string TotalExplanation,
    IPowerStateSource PowerState,
    IReadOnlyList<string> Notes);

/// <summary>Finds every energy meter on this machine and picks the best total, in this order:
/// (1) the sum of the readable RAPL CPU packages (measured, the CPU that trains);
/// (2) the battery while it is discharging (measured, whole machine, off mains only);
/// (3) NVIDIA GPU boards plus the CPU-time estimate (partly estimated);
/// (4) the CPU-time estimate alone (estimated).</summary>
public static class EnergyMeterDiscovery
{
    public static EnergyMeterSet Discover(EnergyDiscoveryOptions? options = null)
    {
        options ??= new EnergyDiscoveryOptions();
        var sysfs = options.Sysfs ?? SysfsRoot.FromEnvironment();
        var clock = options.Clock ?? SystemClock.Instance;
        var notes = new List<string>();
        bool linux = options.ForceLinuxReaders || OperatingSystem.IsLinux()
            || Directory.Exists(sysfs.Resolve("sys/class"));

        var rapl = new List<RaplMeter>();
        var batteries = new List<BatteryMeter>();
        IPowerStateSource powerState;
        if (linux)
        {
            rapl.AddRange(RaplMeter.Discover(sysfs));
            if (rapl.Count == 0) notes.Add($"RAPL: no intel-rapl zones under {sysfs.Resolve("sys/class/powercap")}");
            batteries.AddRange(BatteryMeter.Discover(sysfs, clock));
            powerState = new LinuxPowerStateSource(sysfs);
        }
        else if (OperatingSystem.IsWindows())
        {
            notes.Add("Windows: no energy counter is readable without administrator rights; AC and battery state from GetSystemPowerStatus");
            powerState = new WindowsPowerStateSource();
        }
        else if (OperatingSystem.IsMacOS())
        {
            notes.Add("macOS: no energy counter is readable without administrator rights (powermetrics needs sudo); AC and battery state from pmset");
            powerState = new MacPowerStateSource();
        }
        else
        {
            notes.Add($"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}: no power sensors known");
            powerState = new FixedPowerStateSource(PowerState.Unknown);
        }

        var gpus = new List<IEnergyMeter>();
        if (options.ProbeGpu)
        {
            var (nvml, nvmlReason) = NvmlGpuMeter.Discover(clock);
            if (nvml.Count > 0) gpus.AddRange(nvml);
            else
            {
                var (smi, smiReason) = NvidiaSmiGpuMeter.Discover(clock);
                gpus.AddRange(smi);
                if (smi.Count == 0) notes.Add($"GPU: {nvmlReason}; {smiReason}");
            }
        }

        var estimate = new CpuTimeEstimateMeter(options.Profile, options.CpuTime);

        // Choose the total.
        IEnergyMeter total;
        string why;
        var packages = rapl.Where(r => r.IsPackage && r.Scope.Kind == MeasureKind.Package && r.Availability.IsAvailable).ToList();
        var unreadable = rapl.Where(r => !r.Availability.IsAvailable).ToList();
        if (unreadable.Count > 0)
            notes.Add($"RAPL: {unreadable.Count} zone(s) unreadable: {unreadable[0].Availability.Reason}; fix: {unreadable[0].Availability.Fix ?? "none known"}");
        var dischargingBattery = batteries.FirstOrDefault(b =>
            b.Read() is { Status: BatteryStatus.Discharging, PowerWatts: not null });

        if (packages.Count > 0)
        {
            total = packages.Count == 1 ? packages[0]
                : new SumEnergyMeter("rapl:total", $"all {packages.Count} CPU packages (RAPL)", packages, MeasureKind.Package);
            why = $"measured: sum of {packages.Count} RAPL CPU package counter(s) ({string.Join(", ", packages.Select(p => p.ZoneName))}); " +
                  "covers the CPU packages only (cores, caches, uncore), not memory on most machines, nor screen, disk or GPU boards";
        }
        else if (dischargingBattery is not null)
        {
            total = dischargingBattery;
            why = $"measured: battery {dischargingBattery.Name} discharge power integrated over time; covers the whole machine " +
                  "but only while it runs on battery";
        }
        else if (gpus.Count > 0)
        {
            total = new SumEnergyMeter("gpu+estimate", "GPU board(s) measured + CPU ESTIMATED from CPU time", [.. gpus, estimate]);
            why = "partly ESTIMATED: NVIDIA GPU board energy (measured) plus this process's CPU time × per-core watts (" + estimate.Profile.Name + ")";
        }
        else
        {
            total = estimate;
            why = $"ESTIMATED: no readable energy sensor; this process's CPU time × {estimate.Profile.WattsPerCore:0.##} W per core ({estimate.Profile.Name})";
        }

        var inTotal = new HashSet<IEnergyMeter>(ReferenceEqualityComparer.Instance) { total };
        if (total is SumEnergyMeter sum) foreach (var p in sum.Parts) inTotal.Add(p);
        var all = new List<IEnergyMeter>();
        all.AddRange(rapl);
        all.AddRange(batteries);
        all.AddRange(gpus);
        all.Add(estimate);
        var listed = all.Select(m => new DiscoveredMeter(m, inTotal.Contains(m))).ToList();
        if (total is SumEnergyMeter) listed.Insert(0, new DiscoveredMeter(total, true));
        return new EnergyMeterSet(listed, total, why, powerState, notes);
    }
}
