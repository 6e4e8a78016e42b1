namespace EdgeTune.Tensors;

/// <summary>
/// Counts the native bytes that tensors hold (aligned allocations, not file mappings): live bytes now
/// and the high-water mark, process-wide, plus scoped counters (<see cref="Track"/>) that see only the
/// allocations made on their own async flow, so concurrent work (other tests, other models) does not
/// blur a measurement. Used by the memory planner to compare predicted with measured peaks.
/// </summary>
public static class TensorMemory
{
    private static long s_live, s_peak;
    private static readonly AsyncLocal<TensorMemoryScope?> s_current = new();

    /// <summary>Native tensor bytes allocated and not yet freed, process-wide.</summary>
    public static long LiveBytes => Interlocked.Read(ref s_live);

    /// <summary>The most <see cref="LiveBytes"/> has been since start (or <see cref="ResetPeak"/>).</summary>
    public static long PeakBytes => Interlocked.Read(ref s_peak);

    /// <summary>Sets the process-wide peak to the live bytes now.</summary>
    public static void ResetPeak() => Interlocked.Exchange(ref s_peak, LiveBytes);

    /// <summary>Starts a scope counting the allocations made on this async flow (nested scopes chain:
    /// the outer one counts too) until it is disposed.</summary>
    public static TensorMemoryScope Track()
    {
        var scope = new TensorMemoryScope(s_current.Value);
        s_current.Value = scope;
        return scope;
    }

    internal static void Restore(TensorMemoryScope? scope) => s_current.Value = scope;

    /// <summary>Records an allocation; returns the scope to charge the free to.</summary>
    internal static TensorMemoryScope? Allocated(long bytes)
    {
        long live = Interlocked.Add(ref s_live, bytes);
        UpdateMax(ref s_peak, live);
        var scope = s_current.Value;
        scope?.Add(bytes);
        return scope;
    }

    internal static void Freed(long bytes, TensorMemoryScope? scope)
    {
        Interlocked.Add(ref s_live, -bytes);
        scope?.Add(-bytes);
    }

    internal static void UpdateMax(ref long peak, long value)
    {
        long seen = Interlocked.Read(ref peak);
        while (value > seen)
        {
            long prior = Interlocked.CompareExchange(ref peak, value, seen);
            if (prior == seen) return;
            seen = prior;
        }
    }
}

/// <summary>Live and peak native tensor bytes allocated on one async flow since <see cref="TensorMemory.Track"/>.</summary>
public sealed class TensorMemoryScope : IDisposable
{
    private readonly TensorMemoryScope? _parent;
    private long _live, _peak;
    private bool _disposed;

    internal TensorMemoryScope(TensorMemoryScope? parent) => _parent = parent;

    /// <summary>Bytes allocated in this scope and not yet freed (a free is charged to the scope that allocated).</summary>
    public long LiveBytes => Interlocked.Read(ref _live);

    /// <summary>The most <see cref="LiveBytes"/> has been.</summary>
    public long PeakBytes => Interlocked.Read(ref _peak);

    /// <summary>Sets the peak to the live bytes now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, LiveBytes);

    internal void Add(long bytes)
    {
        long live = Interlocked.Add(ref _live, bytes);
        if (bytes > 0) TensorMemory.UpdateMax(ref _peak, live);
        _parent?.Add(bytes);
    }

    /// <summary>Stops counting new allocations on this flow (frees of tensors it counted still count).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        TensorMemory.Restore(_parent);
    }
}
