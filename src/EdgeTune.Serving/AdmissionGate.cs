namespace EdgeTune.Serving;

/// <summary>
/// Bounded admission: up to <c>maxConcurrency</c> requests run, up to <c>maxQueue</c> more wait for a slot (in
/// arrival order of the semaphore), and any request beyond that is refused at once (the server answers 429).
/// </summary>
internal sealed class AdmissionGate : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly int _capacity;
    private int _admitted; // running + waiting

    public AdmissionGate(int maxConcurrency, int maxQueue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrency, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueue);
        _slots = new SemaphoreSlim(maxConcurrency, maxConcurrency);
        _capacity = maxConcurrency + maxQueue;
    }

    /// <summary>Requests running or waiting now.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>A lease to dispose when the request ends, or null when running and queue are both full.</summary>
    public async Task<IDisposable?> TryEnterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _admitted) > _capacity)
        {
            Interlocked.Decrement(ref _admitted);
            return null;
        }
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Interlocked.Decrement(ref _admitted);
            throw;
        }
        return new Lease(this);
    }

    public void Dispose() => _slots.Dispose();

    private sealed class Lease(AdmissionGate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            gate._slots.Release();
            Interlocked.Decrement(ref gate._admitted);
        }
    }
}
