using System.Numerics;

namespace EdgeTune.Tensors;

/// <summary>
/// The one seeded random source (xoshiro256**, seeded through SplitMix64). Used for
/// initialisation, dropout, sampling and data shuffling; its state can be saved and restored
/// exactly, so a resumed run draws the same numbers as an uninterrupted one.
/// </summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spareGaussian;
    private bool _hasSpare;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        return (int)((NextUInt64() >> 32) * (ulong)n >> 32);
    }

    /// <summary>Standard normal (Box-Muller, the spare value is kept and is part of the state).</summary>
    public double NextGaussian()
    {
        if (_hasSpare) { _hasSpare = false; return _spareGaussian; }
        double u1;
        do u1 = NextDouble(); while (u1 <= double.Epsilon);
        double u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareGaussian = r * Math.Sin(2 * Math.PI * u2);
        _hasSpare = true;
        return r * Math.Cos(2 * Math.PI * u2);
    }

    public void FillUniform(Span<float> dst, float low, float high)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = low + (high - low) * NextFloat();
    }

    public void FillGaussian(Span<float> dst, float mean, float std)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)(mean + std * NextGaussian());
    }

    /// <summary>An independent stream derived from this one (advances this one by one draw).</summary>
    public Rng Fork() => new(NextUInt64());

    /// <summary>The full state, to save in a checkpoint.</summary>
    public RngState State
    {
        get => new(_s0, _s1, _s2, _s3, _hasSpare, _spareGaussian);
        set
        {
            if ((value.S0 | value.S1 | value.S2 | value.S3) == 0) throw new ArgumentException("an all-zero xoshiro state is invalid");
            (_s0, _s1, _s2, _s3, _hasSpare, _spareGaussian) = (value.S0, value.S1, value.S2, value.S3, value.HasSpare, value.Spare);
        }
    }
}

/// <summary>The saved state of an <see cref="Rng"/>.</summary>
public readonly record struct RngState(ulong S0, ulong S1, ulong S2, ulong S3, bool HasSpare, double Spare);
