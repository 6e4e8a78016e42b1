using System.Diagnostics;
using System.Diagnostics.Metrics;
using EdgeTune.Federated.Server;
using EdgeTune.Federated.Validation;

namespace EdgeTune.Federated.Diagnostics;

/// <summary>
/// The federated server's metrics (meter <see cref="MeterName"/>) and spans (activity source <see cref="ActivitySourceName"/>),
/// named for OpenTelemetry (<c>AddMeter("EdgeTune.Federated")</c> / <c>AddSource("EdgeTune.Federated")</c>). An
/// <see cref="FlServer"/> records into <see cref="Shared"/> unless it is given an instance made from an <see cref="IMeterFactory"/>.
/// </summary>
public sealed class FederatedTelemetry
{
    public const string MeterName = "EdgeTune.Federated";
    public const string ActivitySourceName = "EdgeTune.Federated";

    /// <summary>Counter, {round}: rounds closed, tagged <see cref="RoundOutcomeTag"/> and <see cref="ClosedByTag"/>.</summary>
    public const string RoundsName = "edgetune.federated.rounds";
    /// <summary>Histogram, s: from a round's opening to its close.</summary>
    public const string RoundDurationName = "edgetune.federated.round.duration";
    /// <summary>Counter, {update}: client updates accepted into a round.</summary>
    public const string UpdatesAcceptedName = "edgetune.federated.updates.accepted";
    /// <summary>Counter, {update}: client updates refused, tagged <see cref="RejectionReasonTag"/>.</summary>
    public const string UpdatesRejectedName = "edgetune.federated.updates.rejected";
    /// <summary>Counter, {client}: clients enrolled.</summary>
    public const string ClientsEnrolledName = "edgetune.federated.clients.enrolled";

    /// <summary>One round, from its opening to its close (a root span, started back-dated when the round closes).</summary>
    public const string RoundSpanName = "edgetune.federated.round";
    /// <summary>Child of the round: the strategy's aggregation of the accepted updates.</summary>
    public const string AggregateSpanName = "edgetune.federated.aggregate";
    /// <summary>Child of the round: the server's evaluation of the new global adapter.</summary>
    public const string EvaluateSpanName = "edgetune.federated.evaluate";

    /// <summary>"completed" or "failed" (a secure-aggregation round that produced no new version).</summary>
    public const string RoundOutcomeTag = "edgetune.federated.round.outcome";
    /// <summary><see cref="FlRoundResult.ClosedBy"/>.</summary>
    public const string ClosedByTag = "edgetune.federated.round.closed_by";
    /// <summary>A stable code: the <see cref="UpdateRejection"/> codes or one of the constants below.</summary>
    public const string RejectionReasonTag = "edgetune.federated.rejection.reason";
    /// <summary>Span tags.</summary>
    public const string RoundTag = "edgetune.federated.round";
    public const string AcceptedTag = "edgetune.federated.round.accepted";
    public const string RejectedTag = "edgetune.federated.round.rejected";
    public const string SelectedTag = "edgetune.federated.round.selected";
    public const string VersionTag = "edgetune.federated.global_version";

    public const string Completed = "completed";
    public const string Failed = "failed";

    /// <summary>Rejection codes besides <see cref="UpdateRejection"/>'s.</summary>
    public const string RejectedEncoding = "encoding";
    public const string RejectedDigest = "digest";
    public const string RejectedUnknownRound = "unknown-round";
    public const string RejectedLate = "late";
    public const string RejectedStale = "stale";
    public const string RejectedNotSelected = "not-selected";
    public const string RejectedDuplicate = "duplicate";
    public const string RejectedFormat = "format";
    public const string RejectedSecureAggregation = "secure-aggregation";

    private static readonly string? Version = typeof(FederatedTelemetry).Assembly.GetName().Version?.ToString();

    /// <summary>The library's activity source (one static source per component: the standard System.Diagnostics pattern).</summary>
    public static ActivitySource Source { get; } = new(ActivitySourceName, Version);

    /// <summary>Instruments on a library-owned static meter, for servers made without an <see cref="IMeterFactory"/>.</summary>
    public static FederatedTelemetry Shared { get; } = new(new Meter(MeterName, Version));

    private readonly Counter<long> _rounds;
    private readonly Histogram<double> _roundDuration;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _enrolled;

    /// <summary>Instruments on a meter from <paramref name="meterFactory"/> (which owns and disposes it).</summary>
    /// <param name="tags">Meter tags (e.g. the federation's name), exported as instrumentation-scope attributes.</param>
    public FederatedTelemetry(IMeterFactory meterFactory, IEnumerable<KeyValuePair<string, object?>>? tags = null)
        : this((meterFactory ?? throw new ArgumentNullException(nameof(meterFactory))).Create(new MeterOptions(MeterName) { Version = Version, Tags = tags }))
    {
    }

    private FederatedTelemetry(Meter meter)
    {
        Meter = meter;
        _rounds = meter.CreateCounter<long>(RoundsName, "{round}", "Federated rounds closed");
        _roundDuration = meter.CreateHistogram(RoundDurationName, "s", "Duration of a federated round, opening to close",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200] });
        _accepted = meter.CreateCounter<long>(UpdatesAcceptedName, "{update}", "Client updates accepted");
        _rejected = meter.CreateCounter<long>(UpdatesRejectedName, "{update}", "Client updates rejected");
        _enrolled = meter.CreateCounter<long>(ClientsEnrolledName, "{client}", "Clients enrolled");
    }

    /// <summary>The meter the instruments belong to.</summary>
    public Meter Meter { get; }

    internal void RecordEnrolled() => _enrolled.Add(1);

    internal void RecordAccepted() => _accepted.Add(1);

    internal void RecordRejected(string code) => _rejected.Add(1, new KeyValuePair<string, object?>(RejectionReasonTag, code));

    internal void RecordRound(FlRoundResult result)
    {
        _rounds.Add(1, new(RoundOutcomeTag, result.Failure is null ? Completed : Failed), new(ClosedByTag, result.ClosedBy));
        _roundDuration.Record(result.Duration.TotalSeconds, new KeyValuePair<string, object?>(RoundOutcomeTag, result.Failure is null ? Completed : Failed));
    }

    /// <summary>
    /// Starts a round's span as a root, back-dated to when the round opened, without making it <see cref="Activity.Current"/>
    /// (the server runs it across calls and a timer). Null when the source has no listener.
    /// </summary>
    internal static Activity? StartRound(int round, DateTimeOffset openedAt)
    {
        if (!Source.HasListeners()) return null;
        var previous = Activity.Current;
        Activity.Current = null; // a round is not part of whichever request happened to close it
        var span = Source.StartActivity(RoundSpanName, ActivityKind.Internal, parentContext: default, startTime: openedAt);
        span?.SetTag(RoundTag, round);
        Activity.Current = previous;
        return span;
    }

    /// <summary>Starts a child of <paramref name="parent"/> without changing <see cref="Activity.Current"/>; null without a parent.</summary>
    internal static Activity? StartChild(string name, Activity? parent)
    {
        if (parent is null) return null;
        var previous = Activity.Current;
        var span = Source.StartActivity(name, ActivityKind.Internal, parent.Context);
        Activity.Current = previous;
        return span;
    }

    /// <summary>Stops a span without changing <see cref="Activity.Current"/>.</summary>
    internal static void Stop(Activity? span)
    {
        if (span is null) return;
        var previous = Activity.Current;
        span.Stop();
        Activity.Current = previous;
    }

    /// <summary>Tags a round's span with its result (error status without one: the round did not finish) and stops it.</summary>
    internal static void EndRound(Activity? span, FlRoundResult? result)
    {
        if (span is null) return;
        if (result is null) span.SetStatus(ActivityStatusCode.Error, "the round did not complete");
        else
        {
            span.SetTag(SelectedTag, result.Selected).SetTag(AcceptedTag, result.Accepted).SetTag(RejectedTag, result.Rejected)
                .SetTag(VersionTag, result.Version).SetTag(ClosedByTag, result.ClosedBy);
            if (result.Failure is not null) span.SetStatus(ActivityStatusCode.Error, result.Failure);
        }
        Stop(span);
    }
}
