namespace EdgeTune.Tensors;

/// <summary>How the rotated channels of a head are paired.</summary>
/// <remarks>
/// Checkpoints store q/k projection rows for one of the two pairings: Meta's originals, llama2.c
/// and GGUF files of llama-architecture models are interleaved (llama.cpp's converter permutes the
/// HF rows); Hugging Face checkpoints and GGUF files of NEOX-rope architectures (qwen2, phi3 ...)
/// are half-split. <c>Formats.RopePermutation</c> converts weights between the two.
/// </remarks>
public enum RopeStyle
{
    /// <summary>Pairs (x[2i], x[2i+1]) — GGUF / llama2.c / original Meta Llama layout.</summary>
    Interleaved = 0,
    /// <summary>Pairs (x[i], x[i + R/2]) with R the rotary dim — Hugging Face Llama (rotate_half) layout.</summary>
    HalfSplit = 1,
}

/// <summary>
/// Cached cos/sin of the rotary angles θ = pos·invFreq[i] for positions 0..MaxPositions−1 and pairs
/// i &lt; RotaryDim/2, computed in double and stored as float ([MaxPositions, RotaryDim/2] each).
/// Build it once per model; <see cref="Rope"/> reads it on every call. Frequency scaling schemes
/// (llama3, linear, NTK) are expressed by passing their own inverse frequencies.
/// </summary>
public sealed class RopeTable
{
    private readonly float[] _cos;
    private readonly float[] _sin;
    private readonly double[] _inverseFrequencies;

    /// <summary>Standard RoPE: invFreq[i] = theta^(−2i/rotaryDim).</summary>
    public RopeTable(int maxPositions, int rotaryDim, double theta = 10000.0)
        : this(maxPositions, InverseFrequencies(rotaryDim, theta)) { }

    /// <summary>Any inverse frequencies (one per pair); RotaryDim = 2·inverseFrequencies.Length.</summary>
    public RopeTable(int maxPositions, ReadOnlySpan<double> inverseFrequencies) : this(maxPositions, inverseFrequencies, 1.0) { }

    /// <summary>Any inverse frequencies, with cos and sin multiplied by <paramref name="attentionFactor"/> (LongRoPE/YaRN's
    /// magnitude scaling; 1 for plain RoPE).</summary>
    public RopeTable(int maxPositions, ReadOnlySpan<double> inverseFrequencies, double attentionFactor)
    {
        if (!(attentionFactor > 0) || !double.IsFinite(attentionFactor))
            throw new ArgumentOutOfRangeException(nameof(attentionFactor), attentionFactor, "RopeTable: the attention factor must be positive and finite");
        AttentionFactor = attentionFactor;
        if (maxPositions < 0) throw new ArgumentOutOfRangeException(nameof(maxPositions), maxPositions, "RopeTable: must not be negative");
        if (inverseFrequencies.IsEmpty) throw new ArgumentException("RopeTable: at least one inverse frequency is needed", nameof(inverseFrequencies));
        foreach (double f in inverseFrequencies)
            if (!double.IsFinite(f)) throw new ArgumentException($"RopeTable: inverse frequency {f} is not finite", nameof(inverseFrequencies));
        int pairs = inverseFrequencies.Length;
        MaxPositions = maxPositions;
        RotaryDim = 2 * pairs;
        _inverseFrequencies = inverseFrequencies.ToArray();
        _cos = new float[(long)maxPositions * pairs];
        _sin = new float[(long)maxPositions * pairs];
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < pairs; i++)
            {
                double a = p * inverseFrequencies[i];
                _cos[p * pairs + i] = (float)(Math.Cos(a) * attentionFactor);
                _sin[p * pairs + i] = (float)(Math.Sin(a) * attentionFactor);
            }
    }

    /// <summary>The factor on cos and sin (1 for plain RoPE).</summary>
    public double AttentionFactor { get; }

    /// <summary>Positions 0..MaxPositions−1 are covered.</summary>
    public int MaxPositions { get; }

    /// <summary>Channels rotated at the start of each head (even; ≤ head size D).</summary>
    public int RotaryDim { get; }

    /// <summary>RotaryDim / 2.</summary>
    public int Pairs => RotaryDim / 2;

    /// <summary>The inverse frequencies the table was built from (one per pair).</summary>
    public ReadOnlySpan<double> InverseFrequencyValues => _inverseFrequencies;

    /// <summary>cos θ_i at one position, [RotaryDim/2].</summary>
    public ReadOnlySpan<float> Cos(int position) => _cos.AsSpan(Row(position), Pairs);

    /// <summary>sin θ_i at one position, [RotaryDim/2].</summary>
    public ReadOnlySpan<float> Sin(int position) => _sin.AsSpan(Row(position), Pairs);

    /// <summary>invFreq[i] = theta^(−2i/rotaryDim), i &lt; rotaryDim/2 (θ_i = pos/theta^(2i/rotaryDim)).</summary>
    public static double[] InverseFrequencies(int rotaryDim, double theta)
    {
        if (rotaryDim <= 0 || rotaryDim % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(rotaryDim), rotaryDim, "RopeTable: the rotary dim must be positive and even");
        if (!(theta > 0) || !double.IsFinite(theta))
            throw new ArgumentOutOfRangeException(nameof(theta), theta, "RopeTable: theta must be positive and finite");
        var f = new double[rotaryDim / 2];
        for (int i = 0; i < f.Length; i++) f[i] = Math.Pow(theta, -2.0 * i / rotaryDim);
        return f;
    }

    private int Row(int position)
    {
        if ((uint)position >= (uint)MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"RopeTable: position {position} is outside 0..{MaxPositions - 1}");
        return position * Pairs;
    }
}
