using EdgeTune.Federated.Aggregation;

namespace EdgeTune.Federated.Server;

/// <summary>How a <see cref="FlServer"/> runs its rounds and what it accepts.</summary>
public sealed record FlServerOptions
{
    /// <summary>Folder of the server's SQLite state (created when missing; reused on restart).</summary>
    public required string StateFolder { get; init; }

    /// <summary>Secret a client presents once to enrol (the server then issues it an id and its own credential).</summary>
    public required string EnrolmentToken { get; init; }

    /// <summary>Rounds to run (the server reports Done afterwards).</summary>
    public int Rounds { get; init; } = 10;

    /// <summary>Fraction of the enrolled clients asked to train in a round (at least <see cref="MinClients"/>).</summary>
    public double FractionFit { get; init; } = 1.0;

    /// <summary>Clients that must be enrolled before the first round opens, and the least a round asks for.</summary>
    public int MinClients { get; init; } = 2;

    /// <summary>Accepted updates a round needs before it may be aggregated (defaults to <see cref="MinClients"/>).</summary>
    public int? MinQuorum { get; init; }

    /// <summary>After this long a round is aggregated with what arrived (when the quorum is met; otherwise its
    /// undelivered places are freed and the deadline extended). Later updates are rejected as late.</summary>
    public TimeSpan RoundDeadline { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A selected client not heard from (any call, heartbeats included) for this long is a straggler: its
    /// place is given to another client, and the round need not wait for it once the quorum is met.</summary>
    public TimeSpan LivenessTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>What clients train with each round (the strategy may adjust it).</summary>
    public FitInstructions Fit { get; init; } = new();

    /// <summary>Aggregation strategy name (see the strategy factory).</summary>
    public string Strategy { get; init; } = "fedavg";

    /// <summary>Strategy hyper-parameters (FedProx μ, server optimizer, trim fraction, Krum's f ...).</summary>
    public StrategyOptions StrategyOptions { get; init; } = new();

    /// <summary>Largest L2 norm an update may have (0: no bound).</summary>
    public double MaxUpdateNorm { get; init; }

    /// <summary>Central differential privacy: each update is clipped to this L2 norm before aggregation (0: off).</summary>
    public double DpClipNorm { get; init; }

    /// <summary>Central DP Gaussian noise multiplier z (noise std z·C on the sum); 0: no noise.</summary>
    public double DpNoiseMultiplier { get; init; }

    /// <summary>δ of the reported (ε, δ).</summary>
    public double DpDelta { get; init; } = 1e-5;

    /// <summary>Ask clients to clip and noise their own updates (local DP) instead of the server (central DP).</summary>
    public bool DpLocal { get; init; }

    /// <summary>Ask clients to mask updates with secure aggregation (the server only learns the sum).</summary>
    public bool SecureAggregation { get; init; }

    /// <summary>Secure aggregation's threshold t (shares needed to rebuild a secret; a round fails with fewer than t
    /// clients left at any stage). Null: ⌊target/2⌋ + 1, at least 2.</summary>
    public int? SecAggThreshold { get; init; }

    /// <summary>How long each secure-aggregation stage after the first waits for clients that are still alive
    /// (the advertise stage waits like an ordinary round: all sampled, or quorum without live stragglers, or the deadline).</summary>
    public TimeSpan SecAggStageTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Strategies that only need the (weighted) sum of the updates, so they work with secure aggregation.</summary>
    public static IReadOnlyList<string> SecureAggregationStrategies { get; } = ["fedavg", "fedprox", "fedadam", "fedyogi"];

    /// <summary>Update codec clients should use ("f32", "int8", "topk"; the server decodes any of them).</summary>
    public string UpdateEncoding { get; init; } = "f32";

    /// <summary>Calls a client may make per second (token bucket, burst of 4 seconds' worth); beyond it: ResourceExhausted.</summary>
    public double RateLimitPerSecond { get; init; } = 50;

    /// <summary>Seed of per-round seeds and noise.</summary>
    public ulong Seed { get; init; } = 1234;

    public int Quorum => MinQuorum ?? MinClients;

    /// <summary>Throws naming the first invalid field.</summary>
    public FlServerOptions Validate()
    {
        static void Require(bool ok, string field, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"federated server options: {field} = {value} is invalid; {rule}", field);
        }
        Require(!string.IsNullOrEmpty(StateFolder), nameof(StateFolder), StateFolder, "a folder is required");
        Require(!string.IsNullOrEmpty(EnrolmentToken), nameof(EnrolmentToken), "(empty)", "a token is required");
        Require(Rounds > 0, nameof(Rounds), Rounds, "must be > 0");
        Require(FractionFit > 0 && FractionFit <= 1, nameof(FractionFit), FractionFit, "must be in (0, 1]");
        Require(MinClients > 0, nameof(MinClients), MinClients, "must be > 0");
        Require(Quorum > 0 && Quorum <= MinClients, nameof(MinQuorum), Quorum, "must be in [1, MinClients]");
        Require(RoundDeadline > TimeSpan.Zero, nameof(RoundDeadline), RoundDeadline, "must be positive");
        Require(LivenessTimeout > TimeSpan.Zero, nameof(LivenessTimeout), LivenessTimeout, "must be positive");
        Require(MaxUpdateNorm >= 0 && double.IsFinite(MaxUpdateNorm), nameof(MaxUpdateNorm), MaxUpdateNorm, "must be ≥ 0");
        Require(DpClipNorm >= 0 && double.IsFinite(DpClipNorm), nameof(DpClipNorm), DpClipNorm, "must be ≥ 0");
        Require(DpNoiseMultiplier >= 0 && double.IsFinite(DpNoiseMultiplier), nameof(DpNoiseMultiplier), DpNoiseMultiplier, "must be ≥ 0");
        Require(DpNoiseMultiplier == 0 || DpClipNorm > 0, nameof(DpClipNorm), DpClipNorm, "noise needs a clipping norm > 0");
        if (SecureAggregation)
        {
            Require(SecureAggregationStrategies.Contains(Strategy), nameof(Strategy), Strategy,
                $"secure aggregation only reveals the sum of the updates; strategy '{Strategy}' needs individual updates (use one of {string.Join(", ", SecureAggregationStrategies)})");
            Require(DpLocal || (DpClipNorm == 0 && DpNoiseMultiplier == 0), nameof(DpClipNorm), DpClipNorm,
                "central DP clips individual updates, which secure aggregation hides; use local DP (DpLocal) with secure aggregation");
            Require(MinClients >= 2, nameof(MinClients), MinClients, "secure aggregation needs at least 2 clients");
            Require(SecAggThreshold is null || SecAggThreshold >= 2, nameof(SecAggThreshold), SecAggThreshold!, "must be ≥ 2");
            Require(SecAggStageTimeout > TimeSpan.Zero, nameof(SecAggStageTimeout), SecAggStageTimeout, "must be positive");
        }
        Require(!DpLocal || DpNoiseMultiplier > 0, nameof(DpLocal), DpLocal, "local DP needs a noise multiplier > 0");
        Require(RateLimitPerSecond > 0, nameof(RateLimitPerSecond), RateLimitPerSecond, "must be > 0");
        return this;
    }
}
