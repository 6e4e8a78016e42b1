namespace EdgeTune.Energy;

/// <summary>A clock that moves only when told to: for tests and for replaying recorded runs.
/// Thread-safe.</summary>
public sealed class ManualClock : IClock
{
    private readonly object _gate = new();
    private readonly DateTimeOffset _start;
    private TimeSpan _elapsed;

    public ManualClock(DateTimeOffset? start = null)
    {
        _start = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    public DateTimeOffset UtcNow { get { lock (_gate) return _start + _elapsed; } }

    public TimeSpan Elapsed { get { lock (_gate) return _elapsed; } }

    /// <summary>Moves time forward by <paramref name="by"/> (must not be negative).</summary>
    public void Advance(TimeSpan by)
    {
        if (by < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(by), by, "a clock cannot go backwards");
        lock (_gate) _elapsed += by;
    }

    /// <summary>Moves time forward by a number of seconds.</summary>
    public void AdvanceSeconds(double seconds) => Advance(TimeSpan.FromSeconds(seconds));

    /// <summary>A delay function for <see cref="PowerAwareLoop"/> and the CLI sampler that advances
    /// this clock instead of waiting, then runs <paramref name="onDelay"/> (e.g. to change a fake sensor).</summary>
    public Func<TimeSpan, CancellationToken, Task> AsDelay(Action<TimeSpan>? onDelay = null) => (span, ct) =>
    {
        ct.ThrowIfCancellationRequested();
        Advance(span);
        onDelay?.Invoke(span);
        return Task.CompletedTask;
    };
}
