namespace EdgeTune.Energy;

/// <summary>A source of time, injected so that meters, accounting and power policies can be tested
/// with a fake clock instead of real waiting.</summary>
public interface IClock
{
    /// <summary>Wall-clock time (for records and reports).</summary>
    DateTimeOffset UtcNow { get; }

    /// <summary>Monotonic time since an arbitrary origin; use differences only.</summary>
    TimeSpan Elapsed { get; }
}
