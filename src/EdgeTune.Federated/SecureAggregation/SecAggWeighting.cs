namespace EdgeTune.Federated.SecureAggregation;

/// <summary>
/// FedAvg through secure aggregation, which only yields an unweighted sum: each client submits
/// <c>[n·delta…, n]</c> (its example count n as one extra value), and the server divides the summed
/// weighted deltas by the summed counts. Use <c>VectorLength = layout length + 1</c> and a
/// <see cref="SecAggOptions.ClipValue"/> above n·max|delta|.
/// </summary>
public static class SecAggWeighting
{
    /// <summary>The vector a client masks: delta scaled by its example count, then the count.</summary>
    public static float[] Weighted(ReadOnlySpan<float> delta, long numExamples)
    {
        if (numExamples <= 0) throw new ArgumentOutOfRangeException(nameof(numExamples), numExamples, "secure aggregation weighting: a positive example count is expected");
        var r = new float[delta.Length + 1];
        for (int i = 0; i < delta.Length; i++) r[i] = (float)((double)delta[i] * numExamples);
        r[^1] = numExamples;
        return r;
    }

    /// <summary>The example-weighted mean delta and the total example count from a decoded sum.</summary>
    public static (float[] MeanDelta, double TotalExamples) MeanOf(ReadOnlySpan<double> sum)
    {
        if (sum.Length < 1) throw new ArgumentException("secure aggregation weighting: the sum has no count entry");
        double total = sum[^1];
        if (!(total > 0)) throw new ArgumentException($"secure aggregation weighting: the summed example count is {total}; positive expected");
        var mean = new float[sum.Length - 1];
        for (int i = 0; i < mean.Length; i++) mean[i] = (float)(sum[i] / total);
        return (mean, total);
    }
}
