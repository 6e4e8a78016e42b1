namespace EdgeTune.Federated.UpdateCompression;

/// <summary>
/// Error feedback for a lossy update codec (client side): before encoding, the residual left by the
/// previous rounds is added to the update; after encoding, what the server will decode is subtracted,
/// and the difference is kept as the new residual. So the sum of what the server receives over rounds
/// equals the sum of the true updates minus the current residual, which stays bounded.
/// Keep one instance per client (and layout) for the whole run; persist <see cref="Residual"/> if the
/// client restarts.
/// </summary>
public sealed class ErrorFeedback
{
    private readonly float[] _residual;

    /// <param name="length">Update length.</param>
    /// <param name="codec">An <see cref="UpdateCodec"/> name.</param>
    /// <param name="parameter">Codec parameter (int8 chunk size, top-k k; ≤ 0 = default).</param>
    public ErrorFeedback(int length, string codec, int parameter = 0)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "error feedback: length must be ≥ 0");
        if (!UpdateCodec.Names.Contains(codec)) throw new ArgumentException($"unknown update codec '{codec}'", nameof(codec));
        _residual = new float[length];
        Codec = codec;
        Parameter = parameter;
    }

    public string Codec { get; }
    public int Parameter { get; }

    /// <summary>What has not been sent yet (true updates so far minus what the server decoded).</summary>
    public ReadOnlySpan<float> Residual => _residual;

    /// <summary>Restores a persisted residual.</summary>
    public void SetResidual(ReadOnlySpan<float> residual)
    {
        if (residual.Length != _residual.Length) throw new ArgumentException($"error feedback: residual has {residual.Length} values; {_residual.Length} expected");
        residual.CopyTo(_residual);
    }

    /// <summary>Encodes update + residual and keeps the new residual.</summary>
    public byte[] Compress(ReadOnlySpan<float> update)
    {
        if (update.Length != _residual.Length)
            throw new ArgumentException($"error feedback: update has {update.Length} values; {_residual.Length} expected");
        var corrected = new float[update.Length];
        for (int i = 0; i < corrected.Length; i++) corrected[i] = update[i] + _residual[i];
        var payload = UpdateCodec.Encode(Codec, corrected, Parameter);
        var sent = UpdateCodec.Decode(payload, corrected.Length);
        for (int i = 0; i < corrected.Length; i++) _residual[i] = corrected[i] - sent[i];
        return payload;
    }
}
