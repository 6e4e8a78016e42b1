using EdgeTune.Generation;
using EdgeTune.Models.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>Inference over a KV cache: the family's blocks run on <see cref="CacheForward"/>, batch 1.</summary>
public sealed partial class DecoderModel
{
    private CacheForward? _runner;

    /// <summary>
    /// tokens: [T] at positions cache.Length .. cache.Length+T−1; logits: [R, V] for the last R
    /// positions (R = logits.Length / V, 1 ≤ R ≤ T).
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits)
    {
        int t = tokens.Length, c = Config.HiddenSize, v = Config.VocabSize;
        if (t == 0) throw new ArgumentException("DecoderModel.Forward: no tokens given");
        if (logits.Length == 0 || logits.Length % v != 0 || logits.Length / v > t)
            throw new ShapeException($"DecoderModel.Forward: logits has {logits.Length} elements; expected R×V with V = {v} and 1 ≤ R ≤ T = {t}");
        if (cache.Layers != Config.NumHiddenLayers || cache.KvHeads != Config.NumKeyValueHeads || cache.HeadDim != Config.HeadDim)
            throw new ArgumentException($"DecoderModel.Forward: the cache was made for another model ({cache.Layers} layers, {cache.KvHeads} kv heads of {cache.HeadDim})");
        cache.EnsureRoom(t);
        int pos0 = cache.Length;

        var f = _runner ??= new CacheForward();
        f.Begin(cache, pos0, t);
        var x = f.Residual(c);
        Embedding.Forward(tokens, x.Span);
        double scale = EmbeddingScale;
        if (scale != 1.0) Elementwise.Scale(x.Span, (float)scale, x.Span);
        for (int l = 0; l < Layers.Count; l++) // not foreach: an interface enumerator would be allocated per token
        {
            var layer = Layers[l];
            f.BeginLayer();
            var y = layer.Forward(f, x, pos0 + t);
            if (!ReferenceEquals(y.Buffer, x.Buffer)) y.Span.CopyTo(x.Span);
        }
        cache.Advance(t);

        int rows = logits.Length / v;
        f.BeginLayer();
        var last = new Act(x.Buffer, rows, c, (t - rows) * c);
        var normed = f.RmsNorm(last, FinalNorm, Config.RmsNormEps);
        Head.Forward(normed.Span, logits, rows);
        if (FinalLogitSoftcap is double cap) Softcap(logits, (float)cap);
    }

    /// <summary>y = cap·tanh(y/cap) in place.</summary>
    internal static void Softcap(Span<float> y, float cap)
    {
        for (int i = 0; i < y.Length; i++) y[i] = cap * MathF.Tanh(y[i] / cap);
    }
}
