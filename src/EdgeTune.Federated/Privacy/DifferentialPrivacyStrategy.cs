using System.Buffers.Binary;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Aggregation.Internal;
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
public sealed class DifferentialPrivacyStrategy : IStreamingAggregator
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
        var r = Begin(round, global);
        foreach (var u in updates) r.Add(u);
        return r.Complete();
    }

    /// <summary>Streams whatever the inner strategy is: each update is clipped and added to a running sum as it
    /// arrives; the noise (central mode) is added to the sum at <see cref="IRoundAggregation.Complete"/>, and the inner
    /// strategy then sees one update.</summary>
    public IRoundAggregation Begin(int round, ReadOnlySpan<float> global) => new Round(this, round, global);

    private sealed class Round(DifferentialPrivacyStrategy owner, int round, ReadOnlySpan<float> global) : IRoundAggregation
    {
        private readonly float[] _global = global.ToArray();
        private readonly float[] _buffer = new float[global.Length];
        private readonly WeightedSum _sum = new(owner.Name, round, global.Length);
        private int _clipped;

        int IRoundAggregation.Round => round;
        public int Count => _sum.Count;
        public long RetainedBytes => _sum.RetainedBytes + 8L * _global.Length;

        public void Add(ClientUpdate update)
        {
            ArgumentNullException.ThrowIfNull(update);
            if (update.Delta.Length != _buffer.Length)
                throw new ShapeException($"{owner.Name}: round {round}: client '{update.ClientId}' delta has {update.Delta.Length} values but the global vector has {_buffer.Length}");
            update.Delta.CopyTo(_buffer, 0);
            bool clipped = GaussianMechanism.ClipL2(_buffer, owner.Options.ClipNorm) > owner.Options.ClipNorm;
            _sum.AddRaw(_buffer, 1); // uniform weights: example counts would change the sensitivity
            if (clipped) _clipped++;
        }

        public PartialSum Partial() => _sum.Partial(_clipped);

        public void Merge(PartialSum partial)
        {
            _sum.Merge(partial);
            _clipped += partial.Clipped;
        }

        public float[] Complete()
        {
            if (_sum.Count == 0) throw new ArgumentException($"{owner.Name}: round {round} has no client updates to aggregate");
            if (owner.Options.Mode == DpMode.Central)
                GaussianMechanism.AddCentralNoise(_sum.Sum, owner.Options, round);
            int count = _sum.Count;
            var sum = _sum.TakeDividedBy(count);
            var mean = _buffer; // the clipping buffer is free now
            for (int i = 0; i < mean.Length; i++) mean[i] = (float)sum[i];
            owner.LastClippedCount = _clipped;
            var next = owner._inner.Aggregate(round, _global, [new ClientUpdate("dp-aggregate", mean, 1)]);
            owner.Accountant.Step();
            return next;
        }
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
