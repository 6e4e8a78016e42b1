using System.Text.Json;
using EdgeTune.Energy;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;
using EdgeTune.Training;
using EdgeTune.Tests.Training;

namespace EdgeTune.Tests.Energy;

/// <summary>A tiny random Llama trained under each power policy with a fake clock, a fake power state and a
/// fake meter: nothing really sleeps, and pauses/stops must not change the final weights.</summary>
public sealed class TrainingPolicyTests : IDisposable
{
    private const int Steps = 6;
    private const double WattsWhileBusy = 10;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-policy-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A meter whose counter the test moves (joules spent only while a step computes).</summary>
    private sealed class FakeMeter(bool estimate = false) : IEnergyMeter
    {
        public double Joules { get; set; }
        public string Id => "fake:meter";
        public EnergyScope Scope => new(MeasureKind.WholeSystem, "fake meter", "test");
        public bool IsEstimate => estimate;
        public MeterAvailability Availability => MeterAvailability.Available;
        public double ReadJoules() => Joules;
    }

    private sealed class ListSink : IMetricsSink
    {
        public List<string> Lines { get; } = [];
        public void Write(TrainingStatus status) => Lines.Add(JsonlMetricsSink.Format(status));
    }

    private static PowerState Ac(double? temp = null) => new(true, 90, BatteryStatus.Charging, temp, null, "fake");

    private static PowerState Battery() => new(false, 80, BatteryStatus.Discharging, null, 12, "fake");

    private TrainingOptions Options(string sub) => new()
    {
        Steps = Steps, MicroBatch = 2, SeqLen = 8, LearningRate = 3e-3, WarmupSteps = 1,
        EvalEvery = 0, CheckpointEvery = 0, KeepCheckpoints = 5, OutputDir = Path.Combine(_dir, sub),
    };

    private static (DecoderModel Model, TokenStreamBatchSource Train) Setup()
    {
        var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var rng = new Rng(77);
        var data = new int[300];
        for (int i = 0; i < data.Length; i++) data[i] = i % 5 == 0 ? rng.NextInt(53) : (data[Math.Max(0, i - 1)] * 3 + 1) % 53;
        return (model, new TokenStreamBatchSource(data, shuffle: true, seed: 5));
    }

    private static float[][] Weights(DecoderModel model) => model.Parameters.Select(p => p.Value.ToFloatArray()).ToArray();

    private float[][] Unpaused()
    {
        var (model, train) = Setup();
        using (model)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options("plain")))
        {
            Assert.Equal(TrainingStopReason.Completed, trainer.Run().Reason);
            return Weights(model);
        }
    }

    private static void AssertSameWeights(float[][] expected, float[][] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i]); // bit for bit
    }

    /// <summary>A trainer whose steps each take 1 s and 10 J on the fake clock and meter.</summary>
    private static Trainer Build(DecoderModel model, TokenStreamBatchSource train, TrainingOptions options, ManualClock clock, FakeMeter meter,
        PolicyEngine? engine, Func<TimeSpan, CancellationToken, Task> delay, IMetricsSink? sink = null, IProgress<TrainingStatus>? progress = null,
        Action<int>? setThreads = null) =>
        new(DelegateTrainableModel.For(model), train, options)
        {
            Clock = clock,
            PowerPolicies = engine,
            Energy = new EnergyAccountant(meter, clock, fallback: meter),
            PolicyDelay = delay,
            SetThreads = setThreads ?? (_ => { }),
            Metrics = sink,
            Progress = progress,
            BeforeStep = _ => { clock.AdvanceSeconds(1); meter.Joules += WattsWhileBusy; },
        };

    [Fact]
    public void OnlyOnAcPausesWithCheckpointAndResumesWithSameWeights()
    {
        var expected = Unpaused();
        var clock = new ManualClock();
        var meter = new FakeMeter();
        var power = new FixedPowerStateSource(Ac());
        var engine = new PolicyEngine(new PowerPolicyOptions(OnlyOnAc: true, PollSeconds: 30).CreatePolicies(), power, meter, clock, maxThreads: 4);
        int polls = 0;
        var delay = clock.AsDelay(_ => { if (++polls == 3) power.State = Ac(); });
        var sink = new ListSink();
        var events = new List<TrainingStatus>();
        var options = Options("ac");
        var (model, train) = Setup();
        using (model)
        {
            using var trainer = Build(model, train, options, clock, meter, engine, delay, sink,
                new SyncProgress(s => { events.Add(s); if (s.Event == TrainingEvent.Step && s.Step == 3) power.State = Battery(); }));
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            Assert.Equal(Steps, r.LastStep);
            Assert.Equal(1, r.Pauses);
            Assert.Equal(TimeSpan.FromSeconds(90), r.PausedTime);
            Assert.Equal(3, polls);
            // The checkpoint before the pause is at step 3, the last one at the end.
            Assert.True(Directory.Exists(Path.Combine(options.OutputDir!, "checkpoints", TrainingCheckpoint.FolderName(3))));
            var kinds = events.Where(e => e.Event is TrainingEvent.Paused or TrainingEvent.Resumed or TrainingEvent.Checkpoint).Select(e => e.Event).ToList();
            Assert.Equal([TrainingEvent.Checkpoint, TrainingEvent.Paused, TrainingEvent.Resumed, TrainingEvent.Checkpoint], kinds);
            var paused = events.Single(e => e.Event == TrainingEvent.Paused);
            Assert.Equal(3, paused.Step);
            Assert.Contains("battery", paused.Message);
            // The pause is not charged to training: 6 steps × 1 s × 10 J.
            Assert.NotNull(r.Energy);
            Assert.Equal(Steps * WattsWhileBusy, r.Energy!.Joules, 9);
            Assert.Equal(Steps, r.Energy.Seconds, 9);
            Assert.Equal(90, r.Energy.ExcludedSeconds, 9);
            Assert.Contains(sink.Lines, l => l.Contains("\"event\":\"paused\"", StringComparison.Ordinal));
            AssertSameWeights(expected, Weights(model));
        }
    }

    [Fact]
    public void EnergyBudgetStopsWithCheckpointAndResumeFinishesWithSameWeights()
    {
        var expected = Unpaused();
        var options = Options("budget");
        var clock = new ManualClock();
        var meter = new FakeMeter();
        var (model, train) = Setup();
        EnergyAccountant accountant;
        using (model)
        {
            accountant = new EnergyAccountant(meter, clock, fallback: meter);
            var engine = new PolicyEngine(new PowerPolicyOptions(EnergyBudgetJoules: 35).CreatePolicies(), new FixedPowerStateSource(Ac()), meter, clock,
                joulesSpent: () => accountant.TotalJoules);
            using var trainer = new Trainer(DelegateTrainableModel.For(model), train, options)
            {
                Clock = clock, PowerPolicies = engine, Energy = accountant, PolicyDelay = clock.AsDelay(),
                BeforeStep = _ => { clock.AdvanceSeconds(1); meter.Joules += WattsWhileBusy; },
            };
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.PolicyStopped, r.Reason);
            Assert.Equal(4, r.LastStep); // 40 J ≥ 35 J after step 4
            Assert.Contains("energy budget", r.Message);
            Assert.EndsWith(TrainingCheckpoint.FolderName(4), r.LastCheckpoint);
            Assert.Equal(40, r.Energy!.Joules, 9);
        }

        var (model2, train2) = Setup(); // a fresh process: weights come from the checkpoint
        using (model2)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model2), train2, options))
        {
            Assert.NotNull(trainer.Resume());
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            Assert.Equal(4, r.FirstStep);
            Assert.Equal(Steps, r.LastStep);
            AssertSameWeights(expected, Weights(model2));
        }
    }

    [Fact]
    public void ThermalCeilingBacksOffUntilCoolThenContinues()
    {
        var expected = Unpaused();
        var clock = new ManualClock();
        var meter = new FakeMeter();
        var power = new FixedPowerStateSource(Ac(temp: 60));
        var engine = new PolicyEngine(new PowerPolicyOptions(MaxTemperatureCelsius: 75, ThermalHysteresisCelsius: 5, PollSeconds: 10).CreatePolicies(),
            power, meter, clock);
        var temps = new List<double>();
        // Cools by 3 °C per poll: 80 → 77 → 74 → 71 (still above 70) → 68: resume.
        var delay = clock.AsDelay(_ => { power.State = Ac(power.State.MaxTemperatureCelsius - 3); temps.Add(power.State.MaxTemperatureCelsius!.Value); });
        var events = new List<TrainingStatus>();
        var (model, train) = Setup();
        using (model)
        {
            using var trainer = Build(model, train, Options("thermal"), clock, meter, engine, delay, progress:
                new SyncProgress(s => { events.Add(s); if (s.Event == TrainingEvent.Step && s.Step == 2) power.State = Ac(80); }));
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            Assert.Equal(1, r.Pauses);
            Assert.Equal([77.0, 74.0, 71.0, 68.0], temps);
            Assert.Equal(TimeSpan.FromSeconds(40), r.PausedTime);
            var paused = events.Single(e => e.Event == TrainingEvent.Paused);
            Assert.Equal(2, paused.Step);
            Assert.Contains("temperature 80", paused.Message);
            Assert.Single(events, e => e.Event == TrainingEvent.Resumed);
            AssertSameWeights(expected, Weights(model));
        }
    }

    [Fact]
    public void PowerCapThrottlesThreadsAndSleepsAndRestoresThem()
    {
        var expected = Unpaused();
        var clock = new ManualClock();
        var meter = new FakeMeter();
        var engine = new PolicyEngine(new PowerPolicyOptions(PowerCapWatts: 4).CreatePolicies(), new FixedPowerStateSource(Ac()), meter, clock, maxThreads: 8);
        var threads = new List<int>();
        var sleeps = new List<TimeSpan>();
        var (model, train) = Setup();
        using (model)
        {
            using var trainer = Build(model, train, Options("cap"), clock, meter, engine, clock.AsDelay(s => sleeps.Add(s)), setThreads: threads.Add);
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            Assert.Equal(0, r.Pauses);
            Assert.NotEmpty(threads);
            Assert.True(threads[0] < 8, $"first throttle to {threads[0]} threads");
            Assert.Equal(WorkerPool.Shared.Threads, threads[^1]); // given back at the end
            Assert.NotEmpty(sleeps);
            Assert.All(sleeps, s => Assert.True(s > TimeSpan.Zero));
            // Duty cycling lowers the average below the 10 W of an unthrottled step.
            Assert.True(r.Energy!.AverageWatts < WattsWhileBusy, $"average {r.Energy.AverageWatts} W");
            AssertSameWeights(expected, Weights(model));
        }
    }

    [Fact]
    public void MetricsJsonlHasEnergyFieldsOnEveryStep()
    {
        var clock = new ManualClock();
        var meter = new FakeMeter(estimate: true);
        var options = Options("metrics");
        string path = Path.Combine(options.OutputDir!, "metrics.jsonl");
        var (model, train) = Setup();
        using (model)
        {
            using (var sink = new JsonlMetricsSink(path, append: false))
            using (var trainer = Build(model, train, options, clock, meter, engine: null, clock.AsDelay(), sink))
            {
                var r = trainer.Run();
                Assert.Equal(TrainingStopReason.Completed, r.Reason);
                Assert.True(r.Energy!.Estimated);
                Assert.Contains("ESTIMATED", r.Message);
            }
            var steps = File.ReadLines(path).Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("event").GetString() == "step").ToList();
            Assert.Equal(Steps, steps.Count);
            long tokensPerStep = options.TokensPerStep;
            for (int i = 0; i < steps.Count; i++)
            {
                var e = steps[i];
                Assert.Equal(WattsWhileBusy, e.GetProperty("joules").GetDouble(), 9);
                Assert.Equal(WattsWhileBusy / 3600, e.GetProperty("wh").GetDouble(), 12);
                Assert.Equal(WattsWhileBusy, e.GetProperty("avg_w").GetDouble(), 9);
                Assert.Equal(WattsWhileBusy / tokensPerStep, e.GetProperty("j_per_token").GetDouble(), 9);
                Assert.Equal(WattsWhileBusy * (i + 1), e.GetProperty("cum_joules").GetDouble(), 9);
                Assert.True(e.GetProperty("co2e_g").GetDouble() > 0);
                Assert.True(e.GetProperty("estimated").GetBoolean());
            }
        }
    }
}
