namespace EdgeTune.Federated.Server.Internal;

/// <summary>Per-key token buckets: <c>rate</c> tokens a second, up to <c>burst</c> saved.</summary>
internal sealed class RateLimiter(double rate, double burst)
{
    private readonly Dictionary<string, (double Tokens, long Ticks)> _buckets = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Takes a token for <paramref name="key"/>; false when its bucket is empty.</summary>
    public bool TryTake(string key)
    {
        long now = Environment.TickCount64;
        lock (_lock)
        {
            var (tokens, last) = _buckets.TryGetValue(key, out var b) ? b : (burst, now);
            tokens = Math.Min(burst, tokens + (now - last) / 1000.0 * rate);
            if (tokens < 1) { _buckets[key] = (tokens, now); return false; }
            _buckets[key] = (tokens - 1, now);
            if (_buckets.Count > 100_000) _buckets.Clear(); // bound memory against id floods
            return true;
        }
    }
}
