namespace EdgeTune.Federated.Validation;

/// <summary>What the server accepts from a client.</summary>
public sealed record UpdateLimits
{
    /// <summary>Largest payload accepted, in bytes (checked on the declared size before reading it).</summary>
    public long MaxPayloadBytes { get; init; } = 256L << 20;

    /// <summary>Largest L2 norm of a delta (∞ = no bound). Larger updates are rejected, not clipped;
    /// clipping for differential privacy is a separate, explicit step.</summary>
    public double MaxL2Norm { get; init; } = double.PositiveInfinity;

    /// <summary>Largest example count a client may claim (bounds its FedAvg weight).</summary>
    public long MaxExamples { get; init; } = long.MaxValue;

    /// <summary>Payload encodings accepted (<see cref="UpdateCompression.UpdateCodec"/> names).</summary>
    public IReadOnlySet<string> AllowedDTypes { get; init; } = new HashSet<string>(StringComparer.Ordinal)
    {
        UpdateCompression.UpdateCodec.Float32, UpdateCompression.UpdateCodec.Int8, UpdateCompression.UpdateCodec.TopK,
    };
}
