namespace EdgeTune.Federated.SecureAggregation;

/// <summary>
/// The fixed-point code secure aggregation sums: x → round(clip(x)·scale) as a two's-complement
/// 64-bit integer, so sums are exact modulo 2^64 and decode by dividing by the scale.
/// </summary>
public static class FixedPoint
{
    public static ulong[] Encode(ReadOnlySpan<float> values, double scale, double clip)
    {
        var r = new ulong[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double x = values[i];
            if (!double.IsFinite(x)) throw new ArgumentException($"FixedPoint.Encode: value {i} is {x}; finite values expected");
            x = Math.Clamp(x, -clip, clip);
            r[i] = unchecked((ulong)(long)Math.Round(x * scale, MidpointRounding.ToEven));
        }
        return r;
    }

    public static double[] Decode(ReadOnlySpan<ulong> sum, double scale)
    {
        var r = new double[sum.Length];
        for (int i = 0; i < r.Length; i++) r[i] = unchecked((long)sum[i]) / scale;
        return r;
    }

    /// <summary>a[i] += b[i] (mod 2^64).</summary>
    public static void AddInPlace(Span<ulong> a, ReadOnlySpan<ulong> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"FixedPoint.AddInPlace: lengths {a.Length} and {b.Length} differ");
        for (int i = 0; i < a.Length; i++) a[i] = unchecked(a[i] + b[i]);
    }
}
