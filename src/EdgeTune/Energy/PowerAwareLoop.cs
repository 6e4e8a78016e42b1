namespace EdgeTune.Energy;

/// <summary>Something that happened in a <see cref="PowerAwareLoop"/>.</summary>
public enum PowerLoopEventKind
{
    Paused,
    Resumed,
    Throttled,
    Unthrottled,
    Stopped,
    Completed,
}

/// <summary>One loop event, for logs and the metrics file.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Step">The next step to run when it happened.</param>
/// <param name="Reason">The policy's reason.</param>
/// <param name="Time">The loop clock's monotonic time.</param>
public sealed record PowerLoopEvent(PowerLoopEventKind Kind, long Step, string Reason, TimeSpan Time);

/// <summary>How a loop ended.</summary>
/// <param name="NextStep">The first step not run (resume from here).</param>
/// <param name="StepsRun">Steps run in this call.</param>
/// <param name="Completed">True when every step ran; false when a policy stopped the run.</param>
/// <param name="StopReason">The policy's reason when stopped.</param>
/// <param name="Pauses">Number of pauses.</param>
/// <param name="PausedTime">Time spent paused.</param>
/// <param name="SleptTime">Time spent in duty-cycle sleeps.</param>
/// <param name="Events">Everything that happened, in order.</param>
public sealed record PowerLoopResult(
    long NextStep,
    long StepsRun,
    bool Completed,
    string? StopReason,
    int Pauses,
    TimeSpan PausedTime,
    TimeSpan SleptTime,
    IReadOnlyList<PowerLoopEvent> Events);

/// <summary>Runs training steps under a <see cref="PolicyEngine"/>: before each step it evaluates the
/// policies; on Pause it first saves a checkpoint (once per pause), then waits and polls until a policy
/// lets it resume, by itself; on Throttle it sets the thread count and sleeps after the step; on Stop it
/// saves a checkpoint and returns. Steps are never interrupted, so the work done (and the final weights)
/// equals an unpaused run's. Time and waiting are injected (<see cref="IClock"/>, delay function), so
/// tests run instantly with a <see cref="ManualClock"/>.</summary>
public sealed class PowerAwareLoop
{
    private readonly PolicyEngine _engine;
    private readonly IClock _clock;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;

    /// <param name="engine">The policies of this run.</param>
    /// <param name="clock">Time source; the system clock when null.</param>
    /// <param name="delay">How to wait; <see cref="Task.Delay(TimeSpan, CancellationToken)"/> when null.</param>
    public PowerAwareLoop(PolicyEngine engine, IClock? clock = null, Func<TimeSpan, CancellationToken, Task>? delay = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _clock = clock ?? SystemClock.Instance;
        _delay = delay ?? Task.Delay;
    }

    /// <summary>Saves a checkpoint before a pause or a stop: (next step to run, reason, token).</summary>
    public Func<long, string, CancellationToken, Task>? Checkpoint { get; init; }

    /// <summary>Sets the number of worker threads (called on Throttle and when the throttle ends).</summary>
    public Action<int>? SetThreads { get; init; }

    /// <summary>When set, pauses are left out of its step figures (<see cref="EnergyAccountant.Skip"/>).</summary>
    public EnergyAccountant? Accountant { get; init; }

    /// <summary>Called synchronously for every event (log it, write it to the metrics file).</summary>
    public Action<PowerLoopEvent>? OnEvent { get; init; }

    /// <summary>Runs steps <paramref name="firstStep"/> .. <paramref name="endStep"/> − 1.</summary>
    /// <param name="step">Runs one step: (step number, token).</param>
    /// <exception cref="OperationCanceledException">The token was cancelled (no checkpoint is written then).</exception>
    public async Task<PowerLoopResult> RunAsync(Func<long, CancellationToken, Task> step, long firstStep, long endStep,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (endStep < firstStep) throw new ArgumentOutOfRangeException(nameof(endStep), endStep, $"end step must be >= first step {firstStep}");
        var events = new List<PowerLoopEvent>();
        void Emit(PowerLoopEventKind kind, long at, string reason)
        {
            var e = new PowerLoopEvent(kind, at, reason, _clock.Elapsed);
            events.Add(e);
            OnEvent?.Invoke(e);
        }

        long s = firstStep, run = 0;
        int pauses = 0;
        int? threads = null;
        TimeSpan paused = TimeSpan.Zero, slept = TimeSpan.Zero;
        double? lastStepSeconds = null;
        bool inPause = false;
        TimeSpan pauseStart = TimeSpan.Zero;

        while (s < endStep)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var decision = _engine.Evaluate(lastStepSeconds);
            switch (decision)
            {
                case PolicyDecision.Stop stop:
                    if (inPause) paused += _clock.Elapsed - pauseStart;
                    if (Checkpoint is not null) await Checkpoint(s, stop.Why, cancellationToken).ConfigureAwait(false);
                    Emit(PowerLoopEventKind.Stopped, s, stop.Why);
                    return new PowerLoopResult(s, run, false, stop.Why, pauses, paused, slept, events);

                case PolicyDecision.Pause pause:
                    if (!inPause)
                    {
                        if (Checkpoint is not null) await Checkpoint(s, pause.Why, cancellationToken).ConfigureAwait(false);
                        inPause = true;
                        pauses++;
                        pauseStart = _clock.Elapsed;
                        Emit(PowerLoopEventKind.Paused, s, pause.Why);
                    }
                    await _delay(pause.PollInterval, cancellationToken).ConfigureAwait(false);
                    continue;
            }

            if (inPause)
            {
                inPause = false;
                paused += _clock.Elapsed - pauseStart;
                Accountant?.Skip();
                Emit(PowerLoopEventKind.Resumed, s, "policies allow training again");
            }

            TimeSpan sleep = TimeSpan.Zero;
            if (decision is PolicyDecision.Throttle t)
            {
                if (threads != t.Threads)
                {
                    threads = t.Threads;
                    SetThreads?.Invoke(t.Threads);
                    Emit(PowerLoopEventKind.Throttled, s, t.Why);
                }
                sleep = t.SleepAfterStep;
            }
            else if (threads is not null)
            {
                threads = null;
                SetThreads?.Invoke(_engine.MaxThreads);
                Emit(PowerLoopEventKind.Unthrottled, s, "no throttle needed");
            }

            var t0 = _clock.Elapsed;
            await step(s, cancellationToken).ConfigureAwait(false);
            lastStepSeconds = (_clock.Elapsed - t0).TotalSeconds;
            s++;
            run++;
            if (sleep > TimeSpan.Zero && s < endStep)
            {
                await _delay(sleep, cancellationToken).ConfigureAwait(false);
                slept += sleep;
            }
        }
        Emit(PowerLoopEventKind.Completed, s, "all steps done");
        return new PowerLoopResult(s, run, true, null, pauses, paused, slept, events);
    }
}
