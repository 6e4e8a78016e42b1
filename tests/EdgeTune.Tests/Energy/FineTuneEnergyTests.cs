using System.Text.Json;
using EdgeTune.Cli.Commands;
using EdgeTune.Energy;
using EdgeTune.Training.FineTuning;

namespace EdgeTune.Tests.Energy;

/// <summary>The energy pieces of a whole fine-tuning run: meters given to the job, the budget stopping it,
/// energy.png next to loss.png, and the CLI's summary line.</summary>
public sealed class FineTuneEnergyTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-ftenergy-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Spends 1 J per reading: every step's accounting and every policy evaluation read it.</summary>
    private sealed class CountingMeter : IEnergyMeter
    {
        private double _joules;
        public string Id => "fake:counting";
        public EnergyScope Scope => new(MeasureKind.WholeSystem, "fake counting meter", "test");
        public bool IsEstimate => false;
        public MeterAvailability Availability => MeterAvailability.Available;
        public double ReadJoules() => _joules += 1;
    }

    [Fact]
    public async Task EnergyBudgetStopsTheJobAndEnergyPlotIsWritten()
    {
        var meter = new CountingMeter();
        var meters = new EnergyMeterSet([new DiscoveredMeter(meter, true)], meter, "test meter",
            new FixedPowerStateSource(new PowerState(true, null, BatteryStatus.NoBattery, null, null, "fake")), []);
        var options = new FineTuneOptions
        {
            OutputDir = _dir,
            Training = new() { Steps = 30, SeqLen = 32, MicroBatch = 2, EvalEvery = 0, CheckpointEvery = 0, WarmupSteps = 1 },
            Power = new PowerPolicyOptions(EnergyBudgetJoules: 5),
            Meters = meters,
            SampleTokens = 2,
        };
        var r = await FineTuneJob.RunAsync(options);
        Assert.Equal(EdgeTune.Training.TrainingStopReason.PolicyStopped, r.Training.Reason);
        Assert.True(r.Training.LastStep is > 0 and < 30, $"stopped at {r.Training.LastStep}");
        Assert.NotNull(r.Energy);
        Assert.True(r.Energy!.Joules >= 5);
        Assert.False(r.Energy.Estimated);
        Assert.NotNull(r.Training.LastCheckpoint);
        Assert.Equal(Path.Combine(_dir, "energy.png"), r.EnergyPlotPath);
        var png = File.ReadAllBytes(r.EnergyPlotPath!);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        Assert.True(File.Exists(r.LossPlotPath));
        string line = FinetuneCommand.EnergySummary(r.Energy);
        Assert.Contains(" J (", line);
        Assert.Contains("J/token", line);
        Assert.Contains("measured by fake:counting", line);
    }

    [Fact]
    public void EnergyCurvesKeepEnergyCumulativeAcrossResumesAndSkipFilesWithoutEnergy()
    {
        Directory.CreateDirectory(_dir);
        string metrics = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllLines(metrics, ["{\"event\":\"step\",\"step\":1,\"loss\":2}"]);
        Assert.False(EnergyCurves.Save(metrics, Path.Combine(_dir, "none.png")));
        Assert.False(File.Exists(Path.Combine(_dir, "none.png")));

        static string Step(int s, double w, double cum) =>
            JsonSerializer.Serialize(new Dictionary<string, object> { ["event"] = "step", ["step"] = s, ["avg_w"] = w, ["cum_joules"] = cum, ["estimated"] = true });
        File.WriteAllLines(metrics, [Step(1, 5, 5), Step(2, 5, 10), Step(3, 6, 6), Step(4, 6, 12)]);
        string png = Path.Combine(_dir, "energy.png");
        Assert.True(EnergyCurves.Save(metrics, png));
        Assert.True(new FileInfo(png).Length > 100);
    }

    [Fact]
    public void SummaryLineSaysEstimateAndExcludedPauses()
    {
        var report = new EnergyReport(10, 1000, 20, 200, 10, 0.2, 0.0222, 400, true, 30, 90, true, "estimate:cpu-time", "ESTIMATE", []);
        string line = FinetuneCommand.EnergySummary(report);
        Assert.Equal("energy: 200.0 J (0.0556 Wh), 0.2 J/token, 10.00 W average, 0.022 g CO2e at the default 400 g/kWh (estimate); 30 s of pauses excluded", line);
    }
}
