using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTune.Tests.Diagnostics;

/// <summary>
/// The telemetry tests attach process-wide listeners (activity listeners see every source in the process), so they run
/// alone: xunit runs a collection with parallelisation disabled after the parallel ones, with nothing beside it.
/// </summary>
[CollectionDefinition(nameof(TelemetryCollection), DisableParallelization = true)]
public sealed class TelemetryCollection;

/// <summary>A meter factory for one test: every meter it makes is scoped to it, so a listener can pick exactly those.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        options.Scope = this;
        var meter = new Meter(options);
        lock (_meters) _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
            foreach (var m in _meters) m.Dispose();
    }
}

/// <summary>One measurement: instrument, value, tags.</summary>
internal sealed record Measured(string Instrument, string? Unit, double Value, IReadOnlyDictionary<string, object?> Tags)
{
    public object? Tag(string name) => Tags.TryGetValue(name, out var v) ? v : null;
}

/// <summary>Records the measurements of the instruments on meters made by one <see cref="TestMeterFactory"/>.</summary>
internal sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<Measured> _measured = new();

    public MetricRecorder(TestMeterFactory factory)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory)) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        _listener.Start();
    }

    private void Add(Instrument i, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var t in tags) d[t.Key] = t.Value;
        _measured.Enqueue(new Measured(i.Name, i.Unit, value, d));
    }

    /// <summary>The measurements of <paramref name="instrument"/>, in order.</summary>
    public List<Measured> Of(string instrument) => _measured.Where(m => m.Instrument == instrument).ToList();

    public void Dispose() => _listener.Dispose();
}

/// <summary>Collects the stopped activities of the EdgeTune sources and of the tests' own source.</summary>
internal sealed class SpanRecorder : IDisposable
{
    public static readonly ActivitySource TestSource = new("EdgeTune.Tests.Telemetry");

    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name.StartsWith("EdgeTune.", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => _stopped.Enqueue(a),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Stopped spans named <paramref name="name"/> in <paramref name="trace"/> (any trace when default), in stop order.</summary>
    public List<Activity> Named(string name, ActivityTraceId trace = default) =>
        _stopped.Where(a => a.OperationName == name && (trace == default || a.TraceId == trace)).ToList();

    public void Dispose() => _listener.Dispose();
}
