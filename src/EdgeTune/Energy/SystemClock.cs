using System.Diagnostics;

namespace EdgeTune.Energy;

/// <summary>The real clock: <see cref="DateTimeOffset.UtcNow"/> and a monotonic <see cref="Stopwatch"/>.</summary>
public sealed class SystemClock : IClock
{
    private readonly long _origin = Stopwatch.GetTimestamp();

    /// <summary>One shared instance (the origin is the first use).</summary>
    public static SystemClock Instance { get; } = new();

    public DateTimeOffset UtcNow => DateTimeOffset.UtcNow;

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_origin);
}
