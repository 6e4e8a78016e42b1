using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace EdgeTune.Diagnostics;

/// <summary>
/// Generation metrics (meter <see cref="MeterName"/>) and spans (activity source <see cref="ActivitySourceName"/>), named
/// for OpenTelemetry (<c>AddMeter("EdgeTune.Generation")</c> / <c>AddSource("EdgeTune.Generation")</c>). A
/// <see cref="Generation.TokenGenerator"/> records into <see cref="Shared"/> unless given an instance made from an
/// <see cref="IMeterFactory"/>. Times are wall-clock from the start of the call to generate, so for a streaming consumer
/// they include the time the consumer spends between tokens.
/// </summary>
public sealed class GenerationTelemetry
{
    public const string MeterName = "EdgeTune.Generation";
    public const string ActivitySourceName = "EdgeTune.Generation";

    /// <summary>Counter, {token}: prompt tokens prefilled (<see cref="TokenTypeTag"/> "input") and tokens generated ("output").</summary>
    public const string TokensName = "edgetune.generation.tokens";
    /// <summary>Histogram, s: from the start of the generation to its first generated token (prefill plus one sample).</summary>
    public const string TimeToFirstTokenName = "edgetune.generation.time_to_first_token";
    /// <summary>Histogram, s: one whole generation, tagged <see cref="StopReasonTag"/>.</summary>
    public const string DurationName = "edgetune.generation.duration";
    /// <summary>Histogram, {token}/s: generated tokens divided by the generation's duration.</summary>
    public const string ThroughputName = "edgetune.generation.throughput";

    /// <summary>Span of one generation; its children are <see cref="PrefillSpanName"/> and <see cref="DecodeSpanName"/>.</summary>
    public const string GenerateSpanName = "edgetune.generation";
    /// <summary>The batched forward pass over the prompt.</summary>
    public const string PrefillSpanName = "edgetune.generation.prefill";
    /// <summary>Sampling and the one-token forward passes, up to the last token.</summary>
    public const string DecodeSpanName = "edgetune.generation.decode";

    /// <summary>"input" or "output".</summary>
    public const string TokenTypeTag = "edgetune.token.type";
    /// <summary>Why the generation ended (<see cref="Generation.StopReason"/> as text).</summary>
    public const string StopReasonTag = "edgetune.generation.stop_reason";
    public const string InputTokensTag = "edgetune.generation.input_tokens";
    public const string OutputTokensTag = "edgetune.generation.output_tokens";

    /// <summary>Stop reason of a generation whose consumer stopped reading before it ended (e.g. at a stop string).</summary>
    public const string ConsumerStopped = "ConsumerStopped";

    /// <summary>Stop reason of a generation ended by an exception (the span's status is set to error).</summary>
    public const string Error = "Error";

    public const string Input = "input";
    public const string Output = "output";

    private static readonly string? Version = typeof(GenerationTelemetry).Assembly.GetName().Version?.ToString();
    // before Shared: static fields initialise in declaration order
    private static readonly double[] SecondsBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    /// <summary>The library's activity source (one static source per component: the standard System.Diagnostics pattern).</summary>
    public static ActivitySource Source { get; } = new(ActivitySourceName, Version);

    /// <summary>Instruments on a library-owned static meter, for callers without an <see cref="IMeterFactory"/>.</summary>
    public static GenerationTelemetry Shared { get; } = new(new Meter(MeterName, Version));


    private readonly Counter<long> _tokens;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _throughput;

    /// <summary>Instruments on a meter from <paramref name="meterFactory"/> (which owns and disposes it).</summary>
    /// <param name="tags">Meter tags (e.g. the model's name), exported as instrumentation-scope attributes.</param>
    public GenerationTelemetry(IMeterFactory meterFactory, IEnumerable<KeyValuePair<string, object?>>? tags = null)
        : this((meterFactory ?? throw new ArgumentNullException(nameof(meterFactory))).Create(new MeterOptions(MeterName) { Version = Version, Tags = tags }))
    {
    }

    private GenerationTelemetry(Meter meter)
    {
        Meter = meter;
        _tokens = meter.CreateCounter<long>(TokensName, "{token}", "Prompt tokens prefilled and tokens generated");
        _timeToFirstToken = meter.CreateHistogram(TimeToFirstTokenName, "s", "Time from the start of a generation to its first token",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _duration = meter.CreateHistogram(DurationName, "s", "Duration of a generation",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = SecondsBuckets });
        _throughput = meter.CreateHistogram<double>(ThroughputName, "{token}/s", "Generated tokens per second of a generation");
    }

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter { get; }

    /// <summary>
    /// Starts a span without making it <see cref="Activity.Current"/>: generation runs inside an iterator, and a current
    /// activity set there would leak into the caller between tokens. Null when the source has no listener.
    /// </summary>
    internal static Activity? StartDetached(string name, ActivityContext parent = default)
    {
        if (!Source.HasListeners()) return null;
        var previous = Activity.Current;
        var span = parent == default ? Source.StartActivity(name) : Source.StartActivity(name, ActivityKind.Internal, parent);
        Activity.Current = previous;
        return span;
    }

    /// <summary>Stops a span started by <see cref="StartDetached"/>, leaving <see cref="Activity.Current"/> as it is.</summary>
    internal static void StopDetached(Activity? span)
    {
        if (span is null) return;
        var previous = Activity.Current;
        span.Stop();
        Activity.Current = previous;
    }

    internal void RecordPrompt(int tokens) => _tokens.Add(tokens, new KeyValuePair<string, object?>(TokenTypeTag, Input));

    internal void RecordFirstToken(double seconds) => _timeToFirstToken.Record(seconds);

    internal void RecordEnd(int outputTokens, double seconds, string stopReason)
    {
        _tokens.Add(outputTokens, new KeyValuePair<string, object?>(TokenTypeTag, Output));
        var reason = new KeyValuePair<string, object?>(StopReasonTag, stopReason);
        _duration.Record(seconds, reason);
        if (outputTokens > 0 && seconds > 0) _throughput.Record(outputTokens / seconds, reason);
    }
}
