namespace EdgeTune.Formats;

/// <summary>
/// The <c>rope_scaling</c> block of a Hugging Face config: which frequency adjustment to apply
/// and its parameters. <see cref="RopeType"/> is the HF name ("llama3", "linear", "dynamic", "yarn" ...);
/// unknown types are kept verbatim so a model can refuse them by name.
/// </summary>
/// <param name="RopeType">"llama3", "linear", ... (from <c>rope_type</c>, or the older <c>type</c>).</param>
/// <param name="Factor">Scaling factor (<c>factor</c>); 1 when absent.</param>
/// <param name="LowFreqFactor">llama3: <c>low_freq_factor</c>.</param>
/// <param name="HighFreqFactor">llama3: <c>high_freq_factor</c>.</param>
/// <param name="OriginalMaxPositionEmbeddings">llama3 / yarn: <c>original_max_position_embeddings</c>.</param>
public sealed record RopeScaling(
    string RopeType,
    double Factor = 1.0,
    double? LowFreqFactor = null,
    double? HighFreqFactor = null,
    int? OriginalMaxPositionEmbeddings = null)
{
    public bool IsLlama3 => RopeType == "llama3";
    public bool IsLinear => RopeType == "linear";

    /// <summary>
    /// Applies the scaling to RoPE inverse frequencies in place (theta^(-2i/D) for i &lt; D/2).
    /// "linear" divides every frequency by <see cref="Factor"/>; "llama3" divides the low
    /// frequencies (wavelength above original/low_freq_factor) by the factor, keeps the high ones
    /// (wavelength below original/high_freq_factor) and blends smoothly in between; "default" and
    /// "none" do nothing. Any other type throws, naming it.
    /// </summary>
    public void Apply(Span<double> inverseFrequencies)
    {
        switch (RopeType)
        {
            case "default" or "none":
                return;
            case "linear":
                for (int i = 0; i < inverseFrequencies.Length; i++) inverseFrequencies[i] /= Factor;
                return;
            case "llama3":
                double low = LowFreqFactor ?? throw new InvalidOperationException("rope_scaling llama3: low_freq_factor is missing");
                double high = HighFreqFactor ?? throw new InvalidOperationException("rope_scaling llama3: high_freq_factor is missing");
                int original = OriginalMaxPositionEmbeddings ?? throw new InvalidOperationException("rope_scaling llama3: original_max_position_embeddings is missing");
                double lowWavelen = original / low, highWavelen = original / high;
                for (int i = 0; i < inverseFrequencies.Length; i++)
                {
                    double f = inverseFrequencies[i];
                    double wavelen = 2 * Math.PI / f;
                    if (wavelen < highWavelen) continue;
                    if (wavelen > lowWavelen) { inverseFrequencies[i] = f / Factor; continue; }
                    double smooth = (original / wavelen - low) / (high - low);
                    inverseFrequencies[i] = (1 - smooth) * f / Factor + smooth * f;
                }
                return;
            default:
                throw new NotSupportedException($"rope_scaling type '{RopeType}' is not supported (supported: linear, llama3)");
        }
    }
}
