using EdgeTune.Energy;

namespace EdgeTune.Training.Internal;

/// <summary>What the trainer does after asking the power policies before a step.</summary>
internal enum GateOutcome
{
    /// <summary>Run the step.</summary>
    Go,
    /// <summary>A policy ended the run (<see cref="PowerGate.StopReason"/> says why).</summary>
    Stop,
    /// <summary>Cancelled while paused.</summary>
    Cancelled,
}

/// <summary>
/// The trainer's side of the power policies, evaluated between steps (the synchronous counterpart of
/// <see cref="PowerAwareLoop"/>): Pause → checkpoint once, report, wait and poll until the policies allow
/// training again, report the resume and leave the paused time out of the energy figures; Throttle → set
/// the thread count and sleep after the step; Stop → the caller checkpoints and returns. Steps are never
/// interrupted, so the work done equals an unpaused run's.
/// </summary>
internal sealed class PowerGate
{
    private readonly PolicyEngine _engine;
    private readonly IClock _clock;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private readonly Action<int> _setThreads;
    private readonly int _unthrottledThreads;
    private readonly EnergyAccountant? _accountant;
    private int? _threads;
    private TimeSpan _sleepAfterStep;
    private TimeSpan _stepStart;
    private double? _lastStepSeconds;

    public PowerGate(PolicyEngine engine, IClock clock, Func<TimeSpan, CancellationToken, Task>? delay, Action<int>? setThreads,
        int unthrottledThreads, EnergyAccountant? accountant)
    {
        _engine = engine;
        _clock = clock;
        _delay = delay ?? Task.Delay;
        _setThreads = setThreads ?? Tensors.WorkerPool.Configure;
        _unthrottledThreads = unthrottledThreads;
        _accountant = accountant;
    }

    public int Pauses { get; private set; }

    public TimeSpan PausedTime { get; private set; }

    public string? StopReason { get; private set; }

    /// <summary>Asks the policies whether step <paramref name="step"/> may run; blocks while paused.</summary>
    /// <param name="checkpoint">Writes a checkpoint (before a pause).</param>
    /// <param name="report">Reports a <see cref="TrainingEvent"/> with its message.</param>
    public GateOutcome BeforeStep(long step, Action checkpoint, Action<TrainingEvent, string> report, CancellationToken ct)
    {
        var decision = _engine.Evaluate(_lastStepSeconds);
        if (decision is PolicyDecision.Pause first)
        {
            checkpoint();
            Pauses++;
            var start = _clock.Elapsed;
            report(TrainingEvent.Paused, $"paused before step {step}: {first.Why}");
            while (decision is PolicyDecision.Pause pause)
            {
                if (ct.IsCancellationRequested) { PausedTime += _clock.Elapsed - start; return GateOutcome.Cancelled; }
                try { _delay(pause.PollInterval, ct).GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { PausedTime += _clock.Elapsed - start; return GateOutcome.Cancelled; }
                decision = _engine.Evaluate(null);
            }
            PausedTime += _clock.Elapsed - start;
            _accountant?.Skip();
            if (decision is not PolicyDecision.Stop)
                report(TrainingEvent.Resumed, $"resumed before step {step} after {(_clock.Elapsed - start).TotalSeconds:0.#} s: policies allow training again");
        }

        if (decision is PolicyDecision.Stop stop)
        {
            StopReason = stop.Why;
            return GateOutcome.Stop;
        }

        if (decision is PolicyDecision.Throttle t)
        {
            if (_threads != t.Threads)
            {
                _threads = t.Threads;
                _setThreads(t.Threads);
                report(TrainingEvent.Throttled, $"throttled before step {step}: {t.Why}");
            }
            _sleepAfterStep = t.SleepAfterStep;
        }
        else
        {
            if (_threads is not null)
            {
                _threads = null;
                _setThreads(_unthrottledThreads);
                report(TrainingEvent.Throttled, $"throttle ended before step {step}: back to {_unthrottledThreads} threads");
            }
            _sleepAfterStep = TimeSpan.Zero;
        }
        _stepStart = _clock.Elapsed;
        return GateOutcome.Go;
    }

    /// <summary>Measures the step just run and sleeps the throttle's duty-cycle time (not on the last step).</summary>
    public void AfterStep(bool last, CancellationToken ct)
    {
        _lastStepSeconds = (_clock.Elapsed - _stepStart).TotalSeconds;
        if (last || _sleepAfterStep <= TimeSpan.Zero) return;
        try { _delay(_sleepAfterStep, ct).GetAwaiter().GetResult(); }
        catch (OperationCanceledException) { }
        // The sleep stays in the next step's energy: duty cycling is part of what a capped step costs.
    }

    /// <summary>Gives back the full thread count if the run ends throttled.</summary>
    public void End()
    {
        if (_threads is null) return;
        _threads = null;
        _setThreads(_unthrottledThreads);
    }
}
