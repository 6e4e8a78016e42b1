namespace EdgeTune.Federated.Server;

/// <summary>What one completed round did (reported to the host and stored with the round).</summary>
public sealed record FlRoundResult
{
    public int Round { get; init; }
    /// <summary>The global version the round produced.</summary>
    public long Version { get; init; }
    /// <summary>Clients that were asked to train in the round.</summary>
    public int Selected { get; init; }
    public int Accepted { get; init; }
    public int Rejected { get; init; }
    /// <summary>Clients' mean training loss, weighted by examples (NaN when none reported).</summary>
    public double MeanTrainLoss { get; init; } = double.NaN;
    /// <summary>The server's evaluation of the new global adapter (e.g. "loss", "ppl"), when it has one.</summary>
    public IReadOnlyDictionary<string, double> Evaluation { get; init; } = new Dictionary<string, double>();
    public TimeSpan Duration { get; init; }
    /// <summary>Privacy spent so far (ε at the configured δ), when differential privacy is on.</summary>
    public double? Epsilon { get; init; }
    /// <summary>Why the round closed: "all-delivered", "quorum-no-live-stragglers", "deadline", or "secagg-failed".</summary>
    public string ClosedBy { get; init; } = "";
    /// <summary>Why the round failed (no new global version; <see cref="Version"/> is the unchanged one), or null.
    /// Only secure-aggregation rounds fail: too few clients at a stage, or a server restart mid-round.</summary>
    public string? Failure { get; init; }
}
