using EdgeTune.Compression.Pruning.Internal;
using EdgeTune.Models.Llama;
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
    public static ActivationNorms Collect(LlamaModel model, ReadOnlySpan<int> tokens, int windowLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (tokens.Length == 0) throw new ArgumentException("ActivationNorms.Collect: no calibration tokens", nameof(tokens));
        if (windowLength < 1 || windowLength > model.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(windowLength), windowLength, $"ActivationNorms.Collect: window must be 1..{model.MaxPositions}");
        foreach (int id in tokens)
            if ((uint)id >= (uint)model.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), id, $"ActivationNorms.Collect: token id outside the vocabulary of {model.VocabSize}");

        var originals = model.Layers.Select(L => new ILinear[] { L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down }).ToArray();
        var recorders = new List<RecordingLinear>();
        try
        {
            foreach (var L in model.Layers)
            {
                RecordingLinear Wrap(ILinear inner) { var r = new RecordingLinear(inner); recorders.Add(r); return r; }
                L.Q = Wrap(L.Q); L.K = Wrap(L.K); L.V = Wrap(L.V); L.O = Wrap(L.O);
                L.Gate = Wrap(L.Gate); L.Up = Wrap(L.Up); L.Down = Wrap(L.Down);
            }
            var logits = new float[model.VocabSize];
            for (int start = 0; start < tokens.Length; start += windowLength)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = Math.Min(windowLength, tokens.Length - start);
                using var cache = model.CreateCache(n);
                model.Forward(tokens.Slice(start, n), cache, logits);
            }
        }
        finally
        {
            for (int l = 0; l < model.Layers.Count; l++)
            {
                var L = model.Layers[l];
                var o = originals[l];
                (L.Q, L.K, L.V, L.O, L.Gate, L.Up, L.Down) = (o[0], o[1], o[2], o[3], o[4], o[5], o[6]);
            }
        }
        var norms = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var r in recorders)
            norms[r.Name + ".weight"] = r.SumSquares.Select(s => (float)Math.Sqrt(s)).ToArray();
        return new ActivationNorms(norms, tokens.Length);
    }
}
