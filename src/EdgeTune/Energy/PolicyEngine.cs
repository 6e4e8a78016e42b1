namespace EdgeTune.Energy;

/// <summary>Evaluates the run's power policies between training steps: reads the power state and the
/// energy meter, measures the average power since the previous evaluation, asks every policy and
/// combines their answers (<see cref="PolicyDecision.Combine"/>: Stop &gt; Pause &gt; Throttle &gt; Continue).
/// Not thread-safe: one engine per training loop.</summary>
public sealed class PolicyEngine
{
    private readonly IPowerStateSource _state;
    private readonly IEnergyMeter? _meter;
    private readonly IClock _clock;
    private readonly Func<double>? _joulesSpent;
    private double? _startJoules;
    private double? _lastJoules;
    private TimeSpan? _lastTime;

    /// <param name="policies">The policies (fresh instances for this run).</param>
    /// <param name="state">Where AC/battery/temperature come from.</param>
    /// <param name="meter">The energy meter for power and budget (null: no power figures; the power cap
    /// and the budget then never act).</param>
    /// <param name="clock">Time source; the system clock when null.</param>
    /// <param name="maxThreads">Threads of an unthrottled run.</param>
    /// <param name="joulesSpent">What counts against the energy budget; by default all energy the meter
    /// has seen since the engine's first evaluation (pauses included). Pass e.g.
    /// <c>() =&gt; accountant.TotalJoules</c> to count training steps only.</param>
    public PolicyEngine(IEnumerable<IPowerPolicy> policies, IPowerStateSource state, IEnergyMeter? meter,
        IClock? clock = null, int maxThreads = 0, Func<double>? joulesSpent = null)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(state);
        Policies = policies.ToList();
        _state = state;
        _meter = meter;
        _clock = clock ?? SystemClock.Instance;
        MaxThreads = maxThreads > 0 ? maxThreads : Environment.ProcessorCount;
        _joulesSpent = joulesSpent;
    }

    /// <summary>An engine for <paramref name="options"/> over the meters found by discovery.</summary>
    public static PolicyEngine Create(PowerPolicyOptions options, EnergyMeterSet meters, IClock? clock = null,
        int maxThreads = 0, Func<double>? joulesSpent = null) =>
        new(options.CreatePolicies(), meters.PowerState, meters.Total, clock, maxThreads, joulesSpent);

    public IReadOnlyList<IPowerPolicy> Policies { get; }

    public int MaxThreads { get; }

    /// <summary>True when there is nothing to evaluate (the loop can skip the sensor reads).</summary>
    public bool IsEmpty => Policies.Count == 0;

    /// <summary>What the policies saw at the last evaluation.</summary>
    public PolicyContext? LastContext { get; private set; }

    /// <summary>The decision of the last evaluation.</summary>
    public PolicyDecision LastDecision { get; private set; } = PolicyDecision.Go;

    /// <summary>Reads the sensors and asks every policy.</summary>
    /// <param name="lastStepSeconds">Compute time of the step just finished (without sleeps), if any.</param>
    public PolicyDecision Evaluate(double? lastStepSeconds = null)
    {
        if (IsEmpty) return LastDecision = PolicyDecision.Go;
        var state = _state.Read();
        var now = _clock.Elapsed;
        double? avgWatts = null, intervalJoules = null, joules = null;
        bool estimate = _meter?.IsEstimate ?? false;
        if (_meter is not null)
        {
            try { joules = _meter.ReadJoules(); }
            catch (EnergyMeterException) { joules = null; }
        }
        if (joules is double j)
        {
            _startJoules ??= j;
            if (_lastJoules is double lj && _lastTime is TimeSpan lt)
            {
                intervalJoules = Math.Max(0, j - lj);
                double dt = (now - lt).TotalSeconds;
                if (dt > 0) avgWatts = intervalJoules / dt;
            }
            _lastJoules = j;
            _lastTime = now;
        }
        // A direct power reading (battery while discharging) stands in before the first interval.
        avgWatts ??= state.PowerWatts;
        double spent = _joulesSpent?.Invoke() ?? (joules is double jj && _startJoules is double sj ? jj - sj : 0);
        var context = new PolicyContext(state, avgWatts, spent, estimate, now, lastStepSeconds, intervalJoules, MaxThreads);
        LastContext = context;
        return LastDecision = PolicyDecision.Combine(Policies.Select(p => p.Evaluate(context)));
    }
}
