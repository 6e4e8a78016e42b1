namespace EdgeTune.Federated.SecureAggregation;

/// <summary>
/// Parameters all parties of a secure-aggregation round must share.
/// </summary>
/// <param name="Threshold">t: shares needed to rebuild a secret; the round fails with fewer than t
/// survivors. 2 ≤ t; choose t &gt; n/2 so a server cannot get both secrets of one client.</param>
/// <param name="VectorLength">Number of values each client contributes.</param>
/// <param name="Scale">Fixed-point scale: a value x is sent as round(x·Scale) (mod 2^64).</param>
/// <param name="ClipValue">Each value is clipped to [−ClipValue, ClipValue] before encoding, so the sum of
/// any number of clients that can take part stays far inside the signed 64-bit range.</param>
public sealed record SecAggOptions(int Threshold, int VectorLength, double Scale = 65536, double ClipValue = 1 << 20)
{
    internal void Validate()
    {
        if (Threshold < 2) throw new ArgumentOutOfRangeException(nameof(Threshold), Threshold, "secure aggregation: threshold t must be ≥ 2");
        if (VectorLength < 0) throw new ArgumentOutOfRangeException(nameof(VectorLength), VectorLength, "secure aggregation: vector length must be ≥ 0");
        if (!(Scale >= 1) || double.IsInfinity(Scale)) throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "secure aggregation: scale must be finite and ≥ 1");
        if (!(ClipValue > 0) || ClipValue * Scale > (double)(1L << 40))
            throw new ArgumentOutOfRangeException(nameof(ClipValue), ClipValue, "secure aggregation: clip value must be > 0 with ClipValue·Scale ≤ 2^40");
    }
}
