namespace EdgeTune.Federated.SecureAggregation;

/// <summary>A secure-aggregation round cannot go on: too few survivors, a tampered or misaddressed
/// message, an out-of-order stage, or inconsistent shares. The message says which and who.</summary>
public sealed class SecureAggregationException : Exception
{
    public SecureAggregationException(string message) : base(message) { }
    public SecureAggregationException(string message, Exception inner) : base(message, inner) { }
}
