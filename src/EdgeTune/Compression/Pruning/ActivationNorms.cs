using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Quantization.Calibration;
using EdgeTune.Models;
using EdgeTune.Nn;

namespace EdgeTune.Compression.Pruning;

/// <summary>
/// ‖X_j‖₂ for every input channel j of every decoder projection, over calibration tokens: what Wanda's score
/// |W_ij|·‖X_j‖₂ and activation-based structured pruning need. Keyed by the projection's weight name.
/// </summary>
public sealed class ActivationNorms
{
    private readonly Dictionary<string, float[]> _norms;

    private ActivationNorms(Dictionary<string, float[]> norms, long tokens)
    {
        _norms = norms;
        Tokens = tokens;
    }

    /// <summary>Calibration tokens seen by every layer.</summary>
    public long Tokens { get; }

    /// <summary>‖X_j‖₂ of each input channel of the projection whose weight is <paramref name="weightName"/>.</summary>
    public ReadOnlySpan<float> Of(string weightName) => _norms.TryGetValue(weightName, out var n) ? n
        : throw new KeyNotFoundException($"ActivationNorms: no calibration statistics for '{weightName}'");

    public bool Contains(string weightName) => _norms.ContainsKey(weightName);

    /// <summary>Statistics given directly (tests, or norms gathered elsewhere).</summary>
    public static ActivationNorms FromNorms(IReadOnlyDictionary<string, float[]> norms, long tokens = 0) =>
        new(new Dictionary<string, float[]>(norms, StringComparer.Ordinal), tokens);

    /// <summary>
    /// Runs the inference forward over <paramref name="tokens"/> in windows of at most <paramref name="windowLength"/>
    /// (each from an empty cache), with every projection wrapped in a recorder that sums the squares of its inputs;
    /// the model's layers are restored afterwards, also on error.
    /// </summary>
    public static ActivationNorms Collect(DecoderModel model, ReadOnlySpan<int> tokens, int windowLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (tokens.Length == 0) throw new ArgumentException("ActivationNorms.Collect: no calibration tokens", nameof(tokens));
        if (windowLength < 1 || windowLength > model.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(windowLength), windowLength, $"ActivationNorms.Collect: window must be 1..{model.MaxPositions}");
        foreach (int id in tokens)
            if ((uint)id >= (uint)model.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), id, $"ActivationNorms.Collect: token id outside the vocabulary of {model.VocabSize}");

        // One recorder for the whole project: the calibration statistics E[x_j²] over all tokens; ‖X_j‖₂ = sqrt(E[x_j²]·N).
        var stats = ActivationStats.Collect(model, Windows(tokens.ToArray(), windowLength, cancellationToken));
        var norms = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (string layer in stats.Layers)
            norms[layer + ".weight"] = stats.MeanSquares(layer).Select(m => (float)Math.Sqrt((double)m * stats.Tokens)).ToArray();
        return new ActivationNorms(norms, tokens.Length);
    }

    private static IEnumerable<int[]> Windows(int[] tokens, int windowLength, CancellationToken cancellationToken)
    {
        for (int start = 0; start < tokens.Length; start += windowLength)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return tokens[start..Math.Min(tokens.Length, start + windowLength)];
        }
    }
}
