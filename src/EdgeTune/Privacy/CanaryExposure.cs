namespace EdgeTune.Privacy;

/// <summary>
/// Exposure of an inserted canary (Carlini et al. 2019, "The Secret Sharer", Def. 4):
/// <c>exposure = log₂|R| − log₂ rank</c>, where rank is the canary's position (1 = most likely) when every secret of the
/// randomness space R is ordered by the model's log-perplexity of its canary text. Exposure 0: the inserted secret is
/// the least likely of all; log₂|R|: it is the most likely.
/// <para>Ties count against the canary (a candidate with log-perplexity equal to the canary's ranks ahead of it), so
/// exposure is never overstated by ties.</para>
/// <para>When R is too large to enumerate, the rank is estimated from M candidates drawn uniformly from R without the
/// canary: <c>rank ≈ 1 + (|R|−1)·k/M</c> with k the candidates at or below the canary's log-perplexity (Carlini et al.,
/// §4.3 estimate exposure from a sample the same way before extrapolating). With k = 0 the estimate is log₂|R|, the
/// maximum: the sample only shows that exposure is at least about log₂ M, so estimates above log₂ M are saturated
/// (<see cref="IsSaturated"/>).</para>
/// </summary>
public static class CanaryExposure
{
    /// <summary>1 + the number of <paramref name="others"/> at or below <paramref name="canaryLoss"/>.</summary>
    public static long Rank(double canaryLoss, IEnumerable<double> others)
    {
        ArgumentNullException.ThrowIfNull(others);
        if (double.IsNaN(canaryLoss)) throw new ArgumentException("exposure: the canary's log-perplexity is NaN", nameof(canaryLoss));
        long rank = 1;
        foreach (double o in others)
        {
            if (double.IsNaN(o)) throw new ArgumentException("exposure: a candidate's log-perplexity is NaN", nameof(others));
            if (o <= canaryLoss) rank++;
        }
        return rank;
    }

    /// <summary>log₂|R| − log₂ rank.</summary>
    public static double FromRank(double spaceSize, double rank)
    {
        if (!(spaceSize >= 1)) throw new ArgumentOutOfRangeException(nameof(spaceSize), spaceSize, "exposure: |R| must be ≥ 1");
        if (!(rank >= 1 && rank <= spaceSize)) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"exposure: rank must be in [1, |R| = {spaceSize}]");
        return Math.Log2(spaceSize) - Math.Log2(rank);
    }

    /// <summary>The rank estimated from <paramref name="candidates"/> drawn uniformly from R without the canary:
    /// 1 + (|R|−1)·k/M. Exact when the candidates are all of R but the canary (M = |R| − 1).</summary>
    public static double EstimateRank(double spaceSize, double canaryLoss, IReadOnlyList<double> candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        if (candidates.Count == 0) throw new ArgumentException("exposure: no candidates", nameof(candidates));
        if (!(spaceSize >= 2)) throw new ArgumentOutOfRangeException(nameof(spaceSize), spaceSize, "exposure: |R| must be ≥ 2");
        long below = Rank(canaryLoss, candidates) - 1;
        return 1 + (spaceSize - 1) * below / candidates.Count;
    }

    /// <summary>Exposure from the estimated rank (<see cref="EstimateRank"/>).</summary>
    public static double Estimate(double spaceSize, double canaryLoss, IReadOnlyList<double> candidates) =>
        FromRank(spaceSize, EstimateRank(spaceSize, canaryLoss, candidates));

    /// <summary>True when no sampled candidate is at or below the canary: the estimate is the maximum, log₂|R|, and
    /// the sample only supports exposure ≳ log₂ M.</summary>
    public static bool IsSaturated(double canaryLoss, IReadOnlyList<double> candidates) => Rank(canaryLoss, candidates) == 1;
}
