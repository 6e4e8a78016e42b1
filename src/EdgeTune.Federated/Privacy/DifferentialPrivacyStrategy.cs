using System.Buffers.Binary;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Privacy;
using EdgeTune.Tensors;

namespace EdgeTune.Federated.Privacy;

/// <summary>
/// DP-FedAvg on the server (McMahan et al. 2018, "Learning Differentially Private Recurrent Language
/// Models"), wrapping any strategy. In <see cref="DpMode.Central"/> mode each delta is clipped to L2
/// norm C, the clipped deltas are summed with uniform weights (example counts would change the
/// sensitivity), N(0, (z·C)²) is added to the sum and it is divided by the number of updates; the
/// inner strategy then receives this one noisy mean as a single update (so FedAdam/FedYogi apply their
/// server optimizer to it; anything after the noise is post-processing). In <see cref="DpMode.Local"/>
/// mode the clients have already clipped and noised (<see cref="GaussianMechanism.PrivatizeLocally"/>);
/// the server clips again (to enforce C), averages uniformly and adds nothing. Each aggregation
/// advances the <see cref="Accountant"/>; <see cref="CurrentEpsilon"/> reports ε at the configured δ.
/// </summary>
public sealed class DifferentialPrivacyStrategy : IAggregationStrategy
{
    private readonly IAggregationStrategy _inner;

    public DifferentialPrivacyStrategy(IAggregationStrategy inner, DifferentialPrivacyOptions options)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Mode == DpMode.Off) throw new ArgumentException("DP strategy: mode is Off; use the inner strategy directly", nameof(options));
        if (options.NoiseMultiplier <= 0) throw new ArgumentException("DP strategy: a noise multiplier > 0 is needed for a finite ε", nameof(options));
        _inner = inner;
        Options = options;
        Accountant = new RdpAccountant(options.SamplingRate, options.NoiseMultiplier);
    }

    public DifferentialPrivacyOptions Options { get; }
    public RdpAccountant Accountant { get; }

    public string Name => "dp-" + _inner.Name;

    /// <summary>ε at <see cref="DifferentialPrivacyOptions.Delta"/> after the rounds aggregated so far.</summary>
    public double CurrentEpsilon => Accountant.GetEpsilon(Options.Delta).Epsilon;

    /// <summary>How many of the last round's updates were scaled down by clipping.</summary>
    public int LastClippedCount { get; private set; }

    public FitInstructions ConfigureFit(int round, FitInstructions defaults) => _inner.ConfigureFit(round, defaults);

    public IReadOnlyDictionary<string, double> AggregateEvaluation(IReadOnlyList<(long NumExamples, IReadOnlyDictionary<string, double> Metrics)> results) =>
        _inner.AggregateEvaluation(results);

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0) throw new ArgumentException($"{Name}: round {round} has no client updates to aggregate");
        int n = global.Length, clipped = 0;
        var sum = new double[n];
        var buffer = new float[n];
        foreach (var u in updates)
        {
            if (u.Delta.Length != n)
                throw new ShapeException($"{Name}: round {round}: client '{u.ClientId}' delta has {u.Delta.Length} values but the global vector has {n}");
            u.Delta.CopyTo(buffer, 0);
            if (GaussianMechanism.ClipL2(buffer, Options.ClipNorm) > Options.ClipNorm) clipped++;
            for (int i = 0; i < n; i++) sum[i] += buffer[i];
        }
        if (Options.Mode == DpMode.Central)
        {
            GaussianMechanism.AddCentralNoise(sum, Options, round);
        }
        var mean = new float[n];
        for (int i = 0; i < n; i++) mean[i] = (float)(sum[i] / updates.Count);
        LastClippedCount = clipped;
        var next = _inner.Aggregate(round, global, [new ClientUpdate("dp-aggregate", mean, 1)]);
        Accountant.Step();
        return next;
    }

    /// <summary>The inner strategy's state followed by the accounted round count.</summary>
    public byte[]? SaveState()
    {
        var inner = _inner.SaveState() ?? [];
        var bytes = new byte[8 + inner.Length];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, Accountant.Rounds);
        inner.CopyTo(bytes, 8);
        return bytes;
    }

    public void LoadState(byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length < 8) throw new FormatException($"{Name}: state is {state.Length} bytes; at least 8 expected");
        long rounds = BinaryPrimitives.ReadInt64LittleEndian(state);
        if (rounds < 0) throw new FormatException($"{Name}: state holds {rounds} rounds");
        if (state.Length > 8) _inner.LoadState(state[8..]);
        Accountant.SetRounds(rounds);
    }
}
