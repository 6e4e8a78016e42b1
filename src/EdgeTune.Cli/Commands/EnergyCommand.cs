using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Energy;

namespace EdgeTune.Cli.Commands;

/// <summary>What <c>edgetune energy</c> uses from the outside world; tests replace the clock and the
/// waiting so that sampling is instant and the fake sensors change between samples.</summary>
/// <param name="Clock">Time source.</param>
/// <param name="Delay">How to wait between samples.</param>
/// <param name="Discovery">What meter discovery looks at (null: the real machine, sysfs root from
/// EDGETUNE_SYSFS_ROOT or "/").</param>
public sealed record EnergyCommandServices(
    IClock Clock,
    Func<TimeSpan, CancellationToken, Task> Delay,
    EnergyDiscoveryOptions? Discovery = null)
{
    public static EnergyCommandServices Real { get; } = new(SystemClock.Instance, Task.Delay);
}

/// <summary><c>edgetune energy</c>: lists the energy meters found and what each measures, then samples
/// power for a few seconds. <c>--json</c> prints one JSON object. The result goes to standard output,
/// progress and diagnostics to standard error.</summary>
public static class EnergyCommand
{
    public static Command Create() => Create(EnergyCommandServices.Real);

    public static Command Create(EnergyCommandServices services)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text" };
        var seconds = new Option<double>("--seconds")
        {
            Description = "How long to sample power (0 = list meters only)",
            DefaultValueFactory = _ => 3.0,
        };
        var command = new Command("energy", "List the energy meters of this machine and what each measures, then sample power");
        command.Options.Add(json);
        command.Options.Add(seconds);
        command.SetAction(async (parseResult, ct) =>
        {
            var output = parseResult.InvocationConfiguration.Output;
            var error = parseResult.InvocationConfiguration.Error;
            double secs = parseResult.GetValue(seconds);
            if (!(secs >= 0) || secs > 3600)
            {
                throw new CliException(CliErrors.Usage, "--seconds must be between 0 and 3600");
            }
            var result = await RunAsync(services, secs, error, ct).ConfigureAwait(false);
            await output.WriteLineAsync(parseResult.GetValue(json) ? ToJson(result) : ToText(result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private sealed record MeterSample(DiscoveredMeter Meter, double? Joules, double? AverageWatts, string? Error);

    private sealed record SampleResult(
        string SysfsRoot,
        double Seconds,
        EnergyMeterSet Set,
        IReadOnlyList<MeterSample> Meters,
        double? TotalJoules,
        double? TotalWatts,
        IReadOnlyList<(double Time, double Watts)> Series,
        PowerState State,
        IReadOnlyList<ThermalReading> Thermal);

    private static async Task<SampleResult> RunAsync(EnergyCommandServices services, double seconds, TextWriter error, CancellationToken ct)
    {
        var discovery = services.Discovery ?? new EnergyDiscoveryOptions();
        var sysfs = discovery.Sysfs ?? SysfsRoot.FromEnvironment();
        discovery = discovery with { Sysfs = sysfs, Clock = discovery.Clock ?? services.Clock };
        var set = EnergyMeterDiscovery.Discover(discovery);
        var clock = services.Clock;

        var readable = set.Meters.Where(m => m.Meter.Availability.IsAvailable).ToList();
        var start = new Dictionary<DiscoveredMeter, double>();
        var errors = new Dictionary<DiscoveredMeter, string>();
        void ReadAll(Dictionary<DiscoveredMeter, double> into)
        {
            foreach (var m in readable)
            {
                if (errors.ContainsKey(m)) continue;
                try { into[m] = m.Meter.ReadJoules(); }
                catch (EnergyMeterException e) { errors[m] = e.Message; }
            }
        }

        var series = new List<(double, double)>();
        var end = new Dictionary<DiscoveredMeter, double>();
        double elapsed = 0;
        if (seconds > 0)
        {
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"sampling power for {seconds:0.##} s ...")).ConfigureAwait(false);
            int n = Math.Max(1, (int)Math.Round(seconds / 0.5));
            var interval = TimeSpan.FromSeconds(seconds / n);
            ReadAll(start);
            var t0 = clock.Elapsed;
            double prevTotal = SafeRead(set.Total) ?? 0;
            var prevTime = t0;
            for (int i = 0; i < n; i++)
            {
                await services.Delay(interval, ct).ConfigureAwait(false);
                var now = clock.Elapsed;
                if (SafeRead(set.Total) is double tj)
                {
                    double dt = (now - prevTime).TotalSeconds;
                    if (dt > 0) series.Add(((now - t0).TotalSeconds, (tj - prevTotal) / dt));
                    prevTotal = tj;
                }
                prevTime = now;
            }
            ReadAll(end);
            elapsed = (clock.Elapsed - t0).TotalSeconds;
        }

        var samples = set.Meters.Select(m =>
        {
            if (!m.Meter.Availability.IsAvailable && !start.ContainsKey(m)) return new MeterSample(m, null, null, m.Meter.Availability.Reason);
            if (errors.TryGetValue(m, out var err)) return new MeterSample(m, null, null, err);
            if (start.TryGetValue(m, out var a) && end.TryGetValue(m, out var b) && elapsed > 0)
                return new MeterSample(m, b - a, (b - a) / elapsed, null);
            return new MeterSample(m, null, null, null);
        }).ToList();
        var total = samples.FirstOrDefault(s => ReferenceEquals(s.Meter.Meter, set.Total));
        return new SampleResult(sysfs.Root, elapsed, set, samples, total?.Joules, total?.AverageWatts, series,
            set.PowerState.Read(), new ThermalZones(sysfs).Read());
    }

    private static double? SafeRead(IEnergyMeter meter)
    {
        try { return meter.ReadJoules(); }
        catch (EnergyMeterException) { return null; }
    }

    private static string ToText(SampleResult r)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"Energy meters (sysfs root {r.SysfsRoot}):");
        foreach (var s in r.Meters)
        {
            var m = s.Meter.Meter;
            sb.Append(ci, $"  {m.Id,-24} {m.Scope.Label}{(m.IsEstimate && !m.Scope.Label.Contains("ESTIMATE", StringComparison.Ordinal) ? " (ESTIMATE)" : "")}{(s.Meter.InTotal ? " [in total]" : "")}");
            sb.AppendLine();
            sb.AppendLine($"  {"",-24} {m.Scope.Kind}, from {m.Scope.Source}");
            if (!m.Availability.IsAvailable) sb.AppendLine($"  {"",-24} UNAVAILABLE: {m.Availability.Reason}");
            if (m.Availability.Fix is { } fix) sb.AppendLine($"  {"",-24} fix: {fix}");
            if (s.Error is { } e && m.Availability.IsAvailable) sb.AppendLine($"  {"",-24} error: {e}");
            if (s.AverageWatts is double w) sb.AppendLine(ci, $"  {"",-24} {w:0.00} W average over {r.Seconds:0.##} s ({s.Joules:0.###} J)");
        }
        sb.AppendLine($"Total: {r.Set.Total.Id} - {r.Set.TotalExplanation}");
        if (r.TotalWatts is double tw)
            sb.AppendLine(ci, $"Average power: {tw:0.00} W{(r.Set.Total.IsEstimate ? " (ESTIMATED)" : " (measured)")} over {r.Seconds:0.##} s");
        sb.AppendLine($"Power state: {r.State}");
        if (r.Thermal.Count > 0) sb.AppendLine($"Temperatures: {ThermalZones.Describe(r.Thermal)}");
        foreach (var n in r.Set.Notes) sb.AppendLine($"Note: {n}");
        return sb.ToString().TrimEnd();
    }

    private static string ToJson(SampleResult r) => JsonSerializer.Serialize(ToJsonModel(r), CliJson.CreateRelaxed().EnergyCommandJson);

    private static EnergyCommandJson ToJsonModel(SampleResult r) => new(
        r.SysfsRoot,
        r.Seconds,
        r.Meters.Select(s =>
        {
            var m = s.Meter.Meter;
            return new EnergyMeterJson(m.Id, m.Scope.Kind.ToString(), m.Scope.Label, m.Scope.Source, m.IsEstimate, s.Meter.InTotal,
                m.Availability.IsAvailable && s.Error is null, s.Error ?? m.Availability.Reason, m.Availability.Fix,
                Finite(s.Joules), Finite(s.AverageWatts));
        }).ToList(),
        new EnergyTotalJson(r.Set.Total.Id, r.Set.Total.Scope.Label, r.Set.Total.IsEstimate, r.Set.TotalExplanation,
            Finite(r.TotalJoules), Finite(r.TotalWatts)),
        r.Series.Select(x => new EnergySampleJson(x.Time, x.Watts)).ToList(),
        new EnergyPowerJson(r.State.OnAc, Finite(r.State.BatteryPercent), r.State.BatteryStatus.ToString(),
            Finite(r.State.MaxTemperatureCelsius), Finite(r.State.PowerWatts), r.State.Source),
        r.Thermal.Select(t => new EnergyThermalJson(t.Zone, t.Type, t.Celsius)).ToList(),
        r.Set.Notes);

    /// <summary>A number, or null when unknown or not finite (as the output always had it).</summary>
    private static double? Finite(double? v) => v is double d && double.IsFinite(d) ? d : null;
}

/// <summary>What <c>edgetune energy --json</c> prints (every key always present; unknown values null).</summary>
internal sealed record EnergyCommandJson(
    string SysfsRoot,
    double Seconds,
    IReadOnlyList<EnergyMeterJson> Meters,
    EnergyTotalJson Total,
    IReadOnlyList<EnergySampleJson> Samples,
    EnergyPowerJson PowerState,
    IReadOnlyList<EnergyThermalJson> Thermal,
    IReadOnlyList<string> Notes);

internal sealed record EnergyMeterJson(string Id, string Kind, string Label, string Source, bool Estimate, bool InTotal, bool Available,
    string? Reason, string? Fix, double? Joules, double? AvgWatts);

internal sealed record EnergyTotalJson(string Id, string Label, bool Estimate, string Explanation, double? Joules, double? AvgWatts);

/// <summary>One power sample: seconds since sampling began, and the average watts since the previous one.</summary>
internal sealed record EnergySampleJson(double T, double Watts);

internal sealed record EnergyPowerJson(bool? OnAc, double? BatteryPercent, string BatteryStatus,
    [property: JsonPropertyName("max_temp_c")] double? MaxTempC, double? PowerWatts, string Source);

internal sealed record EnergyThermalJson(string Zone, string Type, double Celsius);
