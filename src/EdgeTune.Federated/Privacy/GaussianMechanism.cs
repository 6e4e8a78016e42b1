using EdgeTune.Tensors;

namespace EdgeTune.Federated.Privacy;

/// <summary>The two building blocks of DP aggregation: per-client L2 clipping and Gaussian noise.
/// Noise is drawn from <see cref="Rng"/> with a caller-given seed, so runs are reproducible.</summary>
public static class GaussianMechanism
{
    /// <summary>Scales <paramref name="values"/> so its L2 norm is at most <paramref name="clipNorm"/>;
    /// returns the norm before clipping.</summary>
    public static double ClipL2(Span<float> values, double clipNorm)
    {
        if (!(clipNorm > 0)) throw new ArgumentOutOfRangeException(nameof(clipNorm), clipNorm, "DP clipping: C must be > 0");
        double sq = 0;
        foreach (float v in values)
        {
            if (!float.IsFinite(v)) throw new ArgumentException("DP clipping: the update contains a non-finite value");
            sq += (double)v * v;
        }
        double norm = Math.Sqrt(sq);
        if (norm > clipNorm)
        {
            float f = (float)(clipNorm / norm);
            for (int i = 0; i < values.Length; i++) values[i] *= f;
        }
        return norm;
    }

    /// <summary>values[i] += N(0, std²).</summary>
    public static void AddNoise(Span<float> values, double std, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(std >= 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "DP noise: std must be ≥ 0");
        if (std == 0) return;
        for (int i = 0; i < values.Length; i++) values[i] = (float)(values[i] + std * rng.NextGaussian());
    }

    /// <summary>values[i] += N(0, std²) in double (for a server-side sum).</summary>
    public static void AddNoise(Span<double> values, double std, Rng rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (!(std >= 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "DP noise: std must be ≥ 0");
        if (std == 0) return;
        for (int i = 0; i < values.Length; i++) values[i] += std * rng.NextGaussian();
    }

    /// <summary>Local DP on a client: clip to C, then add N(0, (z·C)²) to every value. Returns the norm before clipping.</summary>
    public static double PrivatizeLocally(Span<float> update, double clipNorm, double noiseMultiplier, Rng rng)
    {
        double norm = ClipL2(update, clipNorm);
        AddNoise(update, noiseMultiplier * clipNorm, rng);
        return norm;
    }

    /// <summary>The noise stream of central DP in <paramref name="round"/>: a fixed function of the seed and the round.</summary>
    public static Rng RoundRng(ulong seed, int round) => new(seed ^ (0x9E3779B97F4A7C15UL * (ulong)(uint)round));

    /// <summary>
    /// Central DP over a sum the server cannot inspect per client (the output of secure aggregation,
    /// where every client clipped its own update to C with <see cref="ClipL2"/> before masking):
    /// adds N(0, (z·C)²) to each value of <paramref name="sum"/>, in place, drawn from <see cref="RoundRng"/>.
    /// </summary>
    public static void AddCentralNoise(Span<double> sum, DifferentialPrivacyOptions options, int round)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        AddNoise(sum, options.NoiseMultiplier * options.ClipNorm, RoundRng(options.Seed, round));
    }
}
