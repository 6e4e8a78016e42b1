using System.Buffers.Binary;
using EdgeTune.Federated.Aggregation.Internal;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// Base of FedAdam and FedYogi (Reddi et al. 2021, Algorithm 2). Each round Δ = the example-weighted
/// mean client delta (the pseudo-gradient is −Δ), accumulated as updates arrive (<see cref="IStreamingAggregator"/>); then
/// <c>m = β1·m + (1−β1)·Δ</c>, v is updated by the subclass (Adam or Yogi rule, starting at τ²), and
/// <c>x = x + η·m / (√v + τ)</c>. No bias correction, as in the paper. Moments are kept in double and
/// persisted exactly by <see cref="SaveState"/>/<see cref="LoadState"/>.
/// </summary>
public abstract class AdaptiveServerStrategy : IStreamingAggregator
{
    private const uint Magic = 0x4F535445; // "ETSO"
    private const int Version = 1;
    private double[]? _m, _v;

    protected AdaptiveServerStrategy(ServerOptimizerOptions? options)
    {
        Options = options ?? new ServerOptimizerOptions();
        Options.Validate(GetType().Name);
    }

    public ServerOptimizerOptions Options { get; }

    public abstract string Name { get; }

    /// <summary>Rounds aggregated so far (persisted).</summary>
    public long Steps { get; private set; }

    /// <summary>The new second moment at one coordinate from the old one and Δ².</summary>
    protected abstract double UpdateSecondMoment(double v, double deltaSquared, double beta2);

    public IRoundAggregation Begin(int round, ReadOnlySpan<float> global) => new Round(this, round, global);

    public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
    {
        RoundChecks.Require(Name, round, global.Length, updates);
        var r = Begin(round, global);
        foreach (var u in updates) r.Add(u);
        return r.Complete();
    }

    /// <summary>The server optimizer step from the round's mean delta; the only place the moments change.</summary>
    private float[] Step(ReadOnlySpan<float> global, double[] delta)
    {
        int n = global.Length;
        if (_m is null || _v is null)
        {
            _m = new double[n];
            _v = new double[n];
            Array.Fill(_v, Options.Tau * Options.Tau);
        }
        else if (_m.Length != n)
            throw new InvalidOperationException($"{Name}: optimizer state holds {_m.Length} values but the global vector has {n}; the layout changed (reset the strategy)");

        double b1 = Options.Beta1, b2 = Options.Beta2, eta = Options.Eta, tau = Options.Tau;
        var next = new float[n];
        for (int i = 0; i < n; i++)
        {
            double d = delta[i];
            _m[i] = b1 * _m[i] + (1 - b1) * d;
            _v[i] = UpdateSecondMoment(_v[i], d * d, b2);
            next[i] = (float)(global[i] + eta * _m[i] / (Math.Sqrt(_v[i]) + tau));
        }
        Steps++;
        return next;
    }

    /// <summary>A round in progress: the running weighted sum of deltas; the optimizer steps at <see cref="Complete"/>.</summary>
    private sealed class Round(AdaptiveServerStrategy owner, int round, ReadOnlySpan<float> global) : IRoundAggregation
    {
        private readonly float[] _global = global.ToArray();
        private readonly WeightedSum _sum = new(owner.Name, round, global.Length);

        int IRoundAggregation.Round => round;
        public int Count => _sum.Count;
        public long RetainedBytes => _sum.RetainedBytes + 4L * _global.Length;
        public void Add(ClientUpdate update) => _sum.Add(update);
        public PartialSum Partial() => _sum.Partial();
        public void Merge(PartialSum partial) => _sum.Merge(partial);

        public float[] Complete()
        {
            if (owner._m is { } m && m.Length != _global.Length) // checked before the sum is spent
                throw new InvalidOperationException($"{owner.Name}: optimizer state holds {m.Length} values but the global vector has {_global.Length}; the layout changed (reset the strategy)");
            return owner.Step(_global, _sum.TakeMean());
        }
    }

    /// <summary>Magic, version, steps, length, then m and v as little-endian doubles; length 0 before the first step (so
    /// that a server can put a fresh strategy back as it was when a round's close fails).</summary>
    public byte[]? SaveState()
    {
        int n = _m?.Length ?? 0;
        var bytes = new byte[4 + 4 + 8 + 4 + 16L * n];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(s[8..], Steps);
        BinaryPrimitives.WriteInt32LittleEndian(s[16..], n);
        int o = 20;
        foreach (double x in _m ?? []) { BinaryPrimitives.WriteDoubleLittleEndian(s[o..], x); o += 8; }
        foreach (double x in _v ?? []) { BinaryPrimitives.WriteDoubleLittleEndian(s[o..], x); o += 8; }
        return bytes;
    }

    public void LoadState(byte[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length < 20) throw new FormatException($"{Name}: optimizer state is {state.Length} bytes; at least 20 expected");
        var s = state.AsSpan();
        if (BinaryPrimitives.ReadUInt32LittleEndian(s) != Magic) throw new FormatException($"{Name}: optimizer state has a wrong magic number");
        int version = BinaryPrimitives.ReadInt32LittleEndian(s[4..]);
        if (version != Version) throw new FormatException($"{Name}: optimizer state version {version}; {Version} expected");
        long steps = BinaryPrimitives.ReadInt64LittleEndian(s[8..]);
        int n = BinaryPrimitives.ReadInt32LittleEndian(s[16..]);
        if (n < 0 || steps < 0 || state.Length != 20 + 16L * n)
            throw new FormatException($"{Name}: optimizer state declares {n} values ({steps} steps) but is {state.Length} bytes");
        var m = new double[n];
        var v = new double[n];
        int o = 20;
        for (int i = 0; i < n; i++, o += 8) m[i] = BinaryPrimitives.ReadDoubleLittleEndian(s[o..]);
        for (int i = 0; i < n; i++, o += 8) v[i] = BinaryPrimitives.ReadDoubleLittleEndian(s[o..]);
        (_m, _v, Steps) = n == 0 ? (null, null, steps) : (m, v, steps); // no values: before the first step
    }
}
