namespace EdgeTune.Energy;

/// <summary>Turns an energy meter into per-step and per-token figures. Each <see cref="RecordStep"/>
/// covers the time since the previous mark (construction, <see cref="Restart"/>, <see cref="Skip"/> or
/// the previous record). Pauses are left out with <see cref="Skip"/>, so idle time is not charged to
/// training (it is reported separately). If the meter fails mid-run, the accountant switches to the
/// fallback meter (by default the CPU-time estimate), marks all later figures as estimated, and says so
/// in <see cref="EnergyReport.Warnings"/>. Thread-safe.</summary>
public sealed class EnergyAccountant
{
    private readonly object _gate = new();
    private readonly IClock _clock;
    private readonly IEnergyMeter? _fallback;
    private readonly List<string> _warnings = [];
    private IEnergyMeter _meter;
    private bool _estimated;
    private double _lastJoules;
    private double _lastFallbackJoules;
    private TimeSpan _lastTime;
    private long _steps, _tokens;
    private double _joules, _seconds, _excludedJoules, _excludedSeconds;

    /// <param name="meter">The meter to account with (e.g. <see cref="EnergyMeterSet.Total"/>).</param>
    /// <param name="clock">Time source; the system clock when null.</param>
    /// <param name="options">Grid intensity etc.; defaults when null.</param>
    /// <param name="fallback">Used if <paramref name="meter"/> fails; a <see cref="CpuTimeEstimateMeter"/>
    /// when null and the meter is not already an estimate. Pass the meter itself to disable (errors then throw).</param>
    public EnergyAccountant(IEnergyMeter meter, IClock? clock = null, EnergyAccountingOptions? options = null, IEnergyMeter? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _meter = meter;
        _clock = clock ?? SystemClock.Instance;
        Options = options ?? EnergyAccountingOptions.Default;
        Options.Validate();
        _fallback = ReferenceEquals(fallback, meter) ? null : fallback ?? (meter.IsEstimate ? null : new CpuTimeEstimateMeter());
        _estimated = meter.IsEstimate;
        Mark();
    }

    public EnergyAccountingOptions Options { get; }

    /// <summary>The meter in use now (the fallback after a failure).</summary>
    public IEnergyMeter Meter { get { lock (_gate) return _meter; } }

    /// <summary>True when any recorded figure is estimated.</summary>
    public bool IsEstimated { get { lock (_gate) return _estimated; } }

    /// <summary>Energy of all recorded intervals so far.</summary>
    public double TotalJoules { get { lock (_gate) return _joules; } }

    /// <summary>Energy used since the last mark, without recording it (for budget checks mid-step).</summary>
    public double PendingJoules { get { lock (_gate) return Math.Max(0, ReadMeter() - _lastJoules); } }

    /// <summary>Starts a new interval now, dropping whatever was used since the last mark without counting it.</summary>
    public void Restart() { lock (_gate) Mark(); }

    /// <summary>Leaves the time and energy since the last mark out of the step figures (a pause), counting
    /// them as excluded.</summary>
    public void Skip()
    {
        lock (_gate)
        {
            var (dj, dt) = Interval();
            _excludedJoules += dj;
            _excludedSeconds += dt;
        }
    }

    /// <summary>Records one training step that processed <paramref name="tokens"/> tokens.</summary>
    public EnergyStepRecord RecordStep(long step, long tokens)
    {
        if (tokens < 0) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "tokens must be >= 0");
        lock (_gate)
        {
            var (dj, dt) = Interval();
            _steps++;
            _tokens += tokens;
            _joules += dj;
            _seconds += dt;
            return new EnergyStepRecord(step, tokens, dt, dj, dt > 0 ? dj / dt : 0,
                tokens > 0 ? dj / tokens : null, _joules, Options.Co2eGrams(dj), _estimated, _meter.Id, _clock.UtcNow);
        }
    }

    /// <summary>Records generated tokens (the generator's per-token accounting); the record's step is the
    /// running count of records.</summary>
    public EnergyStepRecord RecordTokens(long tokens)
    {
        long step;
        lock (_gate) step = _steps;
        return RecordStep(step, tokens);
    }

    /// <summary>The summary of everything recorded so far.</summary>
    public EnergyReport Report()
    {
        lock (_gate)
        {
            return new EnergyReport(_steps, _tokens, _seconds, _joules, _seconds > 0 ? _joules / _seconds : 0,
                _tokens > 0 ? _joules / _tokens : null, Options.Co2eGrams(_joules), Options.GridIntensityGramsPerKwh,
                Options.GridIntensityIsDefault, _excludedSeconds, _excludedJoules, _estimated, _meter.Id,
                _meter.Scope.Describe(), _warnings.ToArray());
        }
    }

    private (double Joules, double Seconds) Interval()
    {
        var j = ReadMeter();
        var t = _clock.Elapsed;
        double dj = Math.Max(0, j - _lastJoules);
        double dt = Math.Max(0, (t - _lastTime).TotalSeconds);
        _lastJoules = j;
        _lastFallbackJoules = _fallbackNow;
        _lastTime = t;
        return (dj, dt);
    }

    private void Mark()
    {
        _lastJoules = ReadMeter();
        _lastFallbackJoules = _fallbackNow;
        _lastTime = _clock.Elapsed;
    }

    /// <summary>Reads the meter in use; the fallback is read alongside (into <see cref="_fallbackNow"/>)
    /// so that, if the meter fails, the interval can be charged from the fallback's value at the last mark.</summary>
    private double ReadMeter()
    {
        bool haveFallback = _fallback is not null && !ReferenceEquals(_meter, _fallback);
        if (haveFallback) _fallbackNow = _fallback!.ReadJoules();
        try { return _meter.ReadJoules(); }
        catch (EnergyMeterException e) when (haveFallback)
        {
            _warnings.Add($"{_meter.Id} failed ({e.Message}); switched to {_fallback!.Id} from here on");
            _meter = _fallback;
            _estimated |= _fallback.IsEstimate;
            _lastJoules = _lastFallbackJoules;
            return _fallbackNow;
        }
    }

    private double _fallbackNow;
}
