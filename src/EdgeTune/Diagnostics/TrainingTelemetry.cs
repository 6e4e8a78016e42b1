using System.Diagnostics;
using System.Diagnostics.Metrics;
using EdgeTune.Energy;

namespace EdgeTune.Diagnostics;

/// <summary>
/// The training loop's metrics (meter <see cref="MeterName"/>) and spans (activity source <see cref="ActivitySourceName"/>),
/// named for OpenTelemetry: <c>AddMeter("EdgeTune.Training")</c> / <c>AddSource("EdgeTune.Training")</c> (or
/// <c>"EdgeTune.*"</c>) export them. A <see cref="Training.Trainer"/> records into <see cref="Shared"/> unless it is given
/// an instance made from an <see cref="IMeterFactory"/> (dependency injection, or a test that wants its own meter).
/// Nothing is measured while no listener is attached: instruments and sources check for listeners first.
/// </summary>
public sealed class TrainingTelemetry
{
    public const string MeterName = "EdgeTune.Training";
    public const string ActivitySourceName = "EdgeTune.Training";

    /// <summary>Counter, {token}: tokens consumed by optimizer steps (skipped steps included: their tokens were read).</summary>
    public const string TokensName = "edgetune.training.tokens";
    /// <summary>Counter, {step}: optimizer steps, tagged <see cref="StepOutcomeTag"/>.</summary>
    public const string StepsName = "edgetune.training.steps";
    /// <summary>Gauge, {nat}: the mean cross-entropy of the last step (split "train") or evaluation (split "validation").</summary>
    public const string LossName = "edgetune.training.loss";
    /// <summary>Gauge, 1: the learning rate of the last step.</summary>
    public const string LearningRateName = "edgetune.training.learning_rate";
    /// <summary>Histogram, s: wall time of one step's forward, backward, clipping and optimizer update (policy pauses excluded).</summary>
    public const string StepDurationName = "edgetune.training.step.duration";
    /// <summary>Counter, J: energy accounted per step (only when the trainer has an <see cref="EnergyAccountant"/>).</summary>
    public const string EnergyName = "edgetune.training.energy";
    /// <summary>Gauge, By: the peak memory so far, tagged <see cref="MemoryTypeTag"/> "rss" (process) or "tensor" (tensor buffers).</summary>
    public const string MemoryPeakName = "edgetune.training.memory.peak";

    /// <summary>Span around <see cref="Training.Trainer.Run"/>.</summary>
    public const string RunSpanName = "edgetune.training.run";
    /// <summary>Child span of the run: one optimizer step (all its micro-batches).</summary>
    public const string StepSpanName = "edgetune.training.step";
    /// <summary>Span of an evaluation on the validation source.</summary>
    public const string EvalSpanName = "edgetune.training.eval";
    /// <summary>Span of a checkpoint write.</summary>
    public const string CheckpointSpanName = "edgetune.training.checkpoint";

    /// <summary>"completed" or "skipped" (non-finite loss or gradient).</summary>
    public const string StepOutcomeTag = "edgetune.training.step.outcome";
    /// <summary>"train" or "validation".</summary>
    public const string SplitTag = "edgetune.training.split";
    /// <summary>"rss" or "tensor".</summary>
    public const string MemoryTypeTag = "edgetune.memory.type";
    /// <summary>The energy meter's id (e.g. "rapl:intel-rapl:0", "estimate:cpu-time").</summary>
    public const string EnergyMeterTag = "edgetune.energy.meter";
    /// <summary>True when the energy is modelled, not measured.</summary>
    public const string EnergyEstimatedTag = "edgetune.energy.estimated";
    /// <summary>Span tags.</summary>
    public const string StepTag = "edgetune.training.step";
    public const string LossTag = "edgetune.training.loss";
    public const string StopReasonTag = "edgetune.training.stop_reason";

    public const string Completed = "completed";
    public const string Skipped = "skipped";
    public const string Train = "train";
    public const string Validation = "validation";

    private static readonly string? Version = typeof(TrainingTelemetry).Assembly.GetName().Version?.ToString();
    // before Shared: static fields initialise in declaration order
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

    /// <summary>The library's activity source. Sources have no factory: one static source per component is the
    /// standard System.Diagnostics pattern, and it costs nothing while no listener samples it.</summary>
    public static ActivitySource Source { get; } = new(ActivitySourceName, Version);

    /// <summary>Instruments on a library-owned static meter, for callers without an <see cref="IMeterFactory"/>
    /// (the standard pattern for System.Diagnostics.Metrics instrumentation in libraries).</summary>
    public static TrainingTelemetry Shared { get; } = new(new Meter(MeterName, Version));


    private readonly Counter<long> _tokens;
    private readonly Counter<long> _steps;
    private readonly Gauge<double> _loss;
    private readonly Gauge<double> _learningRate;
    private readonly Histogram<double> _stepDuration;
    private readonly Counter<double> _energy;
    private readonly Gauge<long> _memoryPeak;

    /// <summary>Instruments on a meter from <paramref name="meterFactory"/> (which owns and disposes it).</summary>
    /// <param name="tags">Meter tags (e.g. a run or model id), exported as instrumentation-scope attributes.</param>
    public TrainingTelemetry(IMeterFactory meterFactory, IEnumerable<KeyValuePair<string, object?>>? tags = null)
        : this((meterFactory ?? throw new ArgumentNullException(nameof(meterFactory))).Create(new MeterOptions(MeterName) { Version = Version, Tags = tags }))
    {
    }

    private TrainingTelemetry(Meter meter)
    {
        Meter = meter;
        _tokens = meter.CreateCounter<long>(TokensName, "{token}", "Tokens consumed by training steps");
        _steps = meter.CreateCounter<long>(StepsName, "{step}", "Optimizer steps, completed or skipped");
        _loss = meter.CreateGauge<double>(LossName, "{nat}", "Mean cross-entropy of the last step or evaluation");
        _learningRate = meter.CreateGauge<double>(LearningRateName, "1", "Learning rate of the last step");
        _stepDuration = meter.CreateHistogram(StepDurationName, "s", "Wall time of one optimizer step",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _energy = meter.CreateCounter<double>(EnergyName, "J", "Energy accounted to training steps");
        _memoryPeak = meter.CreateGauge<long>(MemoryPeakName, "By", "Peak memory so far");
    }

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>Starts the span of one step when the source has listeners (null otherwise).</summary>
    internal static Activity? StartStep(long step)
    {
        if (!Source.HasListeners()) return null;
        var span = Source.StartActivity(StepSpanName);
        span?.SetTag(StepTag, step);
        return span;
    }

    /// <summary>Records one finished step: tokens, outcome, loss (finite ones), learning rate, duration, energy, peaks.</summary>
    internal void RecordStep(long tokens, double? loss, bool skipped, double learningRate, double seconds, EnergyStepRecord? energy)
    {
        var outcome = new KeyValuePair<string, object?>(StepOutcomeTag, skipped ? Skipped : Completed);
        _tokens.Add(tokens);
        _steps.Add(1, outcome);
        if (!skipped && loss is double l) _loss.Record(l, new KeyValuePair<string, object?>(SplitTag, Train));
        _learningRate.Record(learningRate);
        _stepDuration.Record(seconds, outcome);
        if (energy is not null && double.IsFinite(energy.Joules))
            _energy.Add(energy.Joules, new(EnergyMeterTag, energy.Meter), new(EnergyEstimatedTag, energy.Estimated));
        if (_memoryPeak.Enabled) RecordMemory(Training.ProcessMemory.PeakRssBytes(), Tensors.TensorMemory.PeakBytes);
    }

    internal void RecordEvaluation(double loss) => _loss.Record(loss, new KeyValuePair<string, object?>(SplitTag, Validation));

    internal void RecordMemory(long peakRss, long peakTensor)
    {
        _memoryPeak.Record(peakRss, new KeyValuePair<string, object?>(MemoryTypeTag, "rss"));
        _memoryPeak.Record(peakTensor, new KeyValuePair<string, object?>(MemoryTypeTag, "tensor"));
    }
}
