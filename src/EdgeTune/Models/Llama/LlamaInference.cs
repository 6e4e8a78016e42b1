using EdgeTune.Compression.Quantization;
using EdgeTune.Generation;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Llama;

/// <summary>Inference forward over a KV cache: no tape, kernels called directly, batch 1.</summary>
public sealed partial class LlamaModel
{
    /// <summary>
    /// tokens: [T] at positions cache.Length .. cache.Length+T−1; logits: [R, V] for the last R
    /// positions (R = logits.Length / V, 1 ≤ R ≤ T).
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, KvCache cache, Span<float> logits)
    {
        int t = tokens.Length, c = Config.HiddenSize, v = Config.VocabSize;
        if (t == 0) throw new ArgumentException("LlamaModel.Forward: no tokens given");
        if (logits.Length == 0 || logits.Length % v != 0 || logits.Length / v > t)
            throw new ShapeException($"LlamaModel.Forward: logits has {logits.Length} elements; expected R×V with V = {v} and 1 ≤ R ≤ T = {t}");
        if (cache.Layers != Config.NumHiddenLayers || cache.KvHeads != Config.NumKeyValueHeads || cache.HeadDim != Config.HeadDim)
            throw new ArgumentException($"LlamaModel.Forward: the cache was made for another model ({cache.Layers} layers, {cache.KvHeads} kv heads of {cache.HeadDim})");
        cache.EnsureRoom(t);
        int pos0 = cache.Length;
        var rope = RopeFor(pos0 + t);

        int hq = Config.NumAttentionHeads, hkv = Config.NumKeyValueHeads, d = Config.HeadDim;
        int qDim = hq * d, kvDim = hkv * d, hidden = Config.IntermediateSize;
        float eps = (float)Config.RmsNormEps;
        int window = AttentionWindow;

        var x = new float[t * c];
        var xn = new float[t * c];
        var rstd = new float[t];
        var q = new float[t * qDim];
        var k = new float[t * kvDim];
        var val = new float[t * kvDim];
        var att = new float[t * qDim];
        var gate = new float[t * hidden];
        var up = new float[t * hidden];

        EmbedRows(tokens, x);
        for (int l = 0; l < Layers.Count; l++)
        {
            var L = Layers[l];
            RmsNorm.Forward(x, L.AttnNorm.Value.ReadOnlySpan<float>(), xn, rstd, t, c, eps);
            L.Q.Forward(xn, q, t);
            L.K.Forward(xn, k, t);
            L.V.Forward(xn, val, t);
            Rope.Forward(q, t, hq, d, pos0, rope, RopeStyle);
            Rope.Forward(k, t, hkv, d, pos0, rope, RopeStyle);
            k.AsSpan().CopyTo(cache.Keys(l).Slice(pos0 * kvDim, t * kvDim));
            val.AsSpan().CopyTo(cache.Values(l).Slice(pos0 * kvDim, t * kvDim));
            Attention.Decode(q, cache.Keys(l), cache.Values(l), att, default, 1, t, pos0, cache.Capacity, hq, hkv, d, null, window);
            L.O.Forward(att, x, t, accumulate: true);

            RmsNorm.Forward(x, L.FfnNorm.Value.ReadOnlySpan<float>(), xn, rstd, t, c, eps);
            L.Gate.Forward(xn, gate, t);
            L.Up.Forward(xn, up, t);
            Elementwise.SwiGlu(gate, up, gate);
            L.Down.Forward(gate, x, t, accumulate: true);
        }
        cache.Advance(t);

        int rows = logits.Length / v;
        var last = x.AsSpan((t - rows) * c, rows * c);
        var lastNorm = xn.AsSpan(0, rows * c);
        RmsNorm.Forward(last, FinalNorm.Value.ReadOnlySpan<float>(), lastNorm, rstd.AsSpan(0, rows), rows, c, eps);
        if (QuantizedHead is { } qh) QuantGemm.ABt(lastNorm, qh, logits, rows);
        else LinearKernel.Forward(lastNorm, LmHead.Value, logits, rows);
    }

    /// <summary>x[T, C] = rows of the embedding table, widened from F16/BF16 when stored so.</summary>
    private void EmbedRows(ReadOnlySpan<int> tokens, Span<float> x)
    {
        int c = Config.HiddenSize, v = Config.VocabSize;
        if (QuantizedEmbed is { } qe)
        {
            for (int i = 0; i < tokens.Length; i++)
            {
                if ((uint)tokens[i] >= (uint)v)
                    throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"LlamaModel.Forward: token id {tokens[i]} at position {i} is outside the vocabulary [0, {v})");
                qe.DequantizeRows(tokens[i], 1, x.Slice(i * c, c));
            }
            return;
        }
        var embed = Embed.Value;
        switch (embed.DType)
        {
            case DType.F32: Embedding.Forward(embed.ReadOnlySpan<float>(), tokens, x, v, c); break;
            case DType.F16: Embedding.Forward(embed.ReadOnlySpan<Half>(), tokens, x, v, c); break;
            case DType.BF16: Embedding.Forward(embed.ReadOnlySpan<ushort>(), tokens, x, v, c); break;
            default: throw new ShapeException($"embedding '{embed.Name}' has dtype {embed.DType}; F32, F16 or BF16 expected");
        }
    }

    /// <summary>The RoPE table, grown to cover <paramref name="positions"/> positions.</summary>
    private RopeTable RopeFor(int positions)
    {
        if (_rope is { } r && r.MaxPositions >= positions) return r;
        int size = Math.Max(positions, Math.Min(2 * (_rope?.MaxPositions ?? 0), MaxPositions));
        size = Math.Max(size, Math.Min(256, MaxPositions));
        return _rope = new RopeTable(size, LlamaRope.InverseFrequencies(Config));
    }
}
