namespace EdgeTune.Privacy;

/// <summary>
/// The inverse of <see cref="RdpAccountant"/>: the smallest noise multiplier z for which <c>steps</c> rounds of the
/// subsampled Gaussian mechanism at sampling rate q stay within a target (ε, δ). ε decreases monotonically in z, so a
/// bracket is grown until it holds the target and then bisected; the value returned is the upper end of the final
/// bracket, so its ε never exceeds the target (it is below it by at most the bisection tolerance's effect).
/// </summary>
public static class NoiseCalibration
{
    /// <summary>The largest noise multiplier searched; targets that need more are refused.</summary>
    public const double MaxNoiseMultiplier = 1e4;

    /// <summary>ε after <paramref name="steps"/> rounds at (q, z), at <paramref name="delta"/>.</summary>
    public static double EpsilonFor(double samplingRate, double noiseMultiplier, long steps, double delta)
    {
        if (steps < 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be ≥ 0");
        var acc = new RdpAccountant(samplingRate, noiseMultiplier);
        acc.Step(steps);
        return acc.GetEpsilon(delta).Epsilon;
    }

    /// <summary>The smallest z (relative tolerance 1e-4) with ε(q, z, steps, δ) ≤ <paramref name="targetEpsilon"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">a parameter is out of range, or the target needs z above <see cref="MaxNoiseMultiplier"/>.</exception>
    public static double NoiseMultiplierFor(double targetEpsilon, double delta, double samplingRate, long steps)
    {
        if (!(targetEpsilon > 0) || double.IsInfinity(targetEpsilon)) throw new ArgumentOutOfRangeException(nameof(targetEpsilon), targetEpsilon, "target ε must be finite and > 0");
        if (!(delta > 0 && delta < 1)) throw new ArgumentOutOfRangeException(nameof(delta), delta, "δ must be in (0, 1)");
        if (!(samplingRate > 0 && samplingRate <= 1)) throw new ArgumentOutOfRangeException(nameof(samplingRate), samplingRate, "sampling rate q must be in (0, 1]");
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be > 0");
        double hi = 1;
        while (EpsilonFor(samplingRate, hi, steps, delta) > targetEpsilon)
        {
            hi *= 2;
            if (hi > MaxNoiseMultiplier)
                throw new ArgumentOutOfRangeException(nameof(targetEpsilon), targetEpsilon,
                    $"ε = {targetEpsilon} at δ = {delta} over {steps} steps at q = {samplingRate} needs a noise multiplier above {MaxNoiseMultiplier}");
        }
        double lo = hi / 2;
        if (hi == 1)
        {
            // The target is loose: shrink the lower end until it violates the target (or z is negligible).
            lo = 0.5;
            while (lo > 1e-3 && EpsilonFor(samplingRate, lo, steps, delta) <= targetEpsilon) { hi = lo; lo /= 2; }
        }
        while (hi - lo > 1e-4 * hi)
        {
            double mid = 0.5 * (lo + hi);
            if (EpsilonFor(samplingRate, mid, steps, delta) <= targetEpsilon) hi = mid; else lo = mid;
        }
        return hi;
    }
}
