using EdgeTune.Formats;

namespace EdgeTune.Bench.Common;

/// <summary>
/// Model FLOPs of one Llama training step per token, counted from the config (not from what the
/// kernels happen to do): every linear weight costs 2 FLOPs forward, 2 for the input gradient, and
/// 2 more when the weight itself is trained; causal attention counts the keys actually attended.
/// </summary>
public static class FlopCount
{
    /// <summary>Weights of the linear layers of one decoder block (q, k, v, o, gate, up, down).</summary>
    public static long BlockLinearWeights(HfConfig c) =>
        (long)c.HiddenSize * c.NumAttentionHeads * c.HeadDim * 2            // q, o
        + (long)c.HiddenSize * c.NumKeyValueHeads * c.HeadDim * 2           // k, v
        + (long)c.HiddenSize * c.IntermediateSize * 3;                     // gate, up, down

    /// <summary>LoRA adapter weights of one block, rank r on all seven projections: r·(in + out) each.</summary>
    public static long BlockLoraWeights(HfConfig c, int rank)
    {
        long C = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim, f = c.IntermediateSize;
        return rank * ((C + q) + (C + kv) * 2 + (q + C) + (C + f) * 2 + (f + C));
    }

    /// <summary>LM head weights (V·C; the tied embedding counts here once, its lookup is free).</summary>
    public static long LmHeadWeights(HfConfig c) => (long)c.VocabSize * c.HiddenSize;

    /// <summary>Attention FLOPs per token, forward + backward: QKᵀ and PV cost 2·D each per attended
    /// key per head; causal, so the mean attended keys are (T+1)/2; backward is 2× forward.</summary>
    public static double Attention(HfConfig c, int seqLen) =>
        3.0 * 4.0 * c.HeadDim * ((seqLen + 1) / 2.0) * c.NumAttentionHeads * c.NumHiddenLayers;

    /// <summary>FLOPs per token of one training step; <paramref name="loraRank"/> 0 = full fine-tuning.</summary>
    public static double PerToken(HfConfig c, int seqLen, int loraRank)
    {
        double linear = (double)BlockLinearWeights(c) * c.NumHiddenLayers + LmHeadWeights(c);
        double weights = loraRank == 0
            ? 6.0 * linear                                                             // fwd + dX + dW for all
            : 4.0 * linear + 6.0 * BlockLoraWeights(c, loraRank) * c.NumHiddenLayers;   // frozen: fwd + dX; adapters: fwd + dX + dW
        return weights + Attention(c, seqLen);
    }

    /// <summary>The formula and its terms, for printing.</summary>
    public static IEnumerable<string> Describe(HfConfig c, int seqLen, int loraRank)
    {
        long block = BlockLinearWeights(c), head = LmHeadWeights(c), lora = BlockLoraWeights(c, loraRank);
        double n = (double)block * c.NumHiddenLayers + head;
        yield return $"FLOPs per token: N = L·(linear weights per block) + V·C = {c.NumHiddenLayers}·{block:N0} + {c.VocabSize}·{c.HiddenSize} = {n:N0} linear weights " +
            "(embedding lookup and norms/pointwise not counted)";
        yield return $"  attention (causal, mean (T+1)/2 keys): A = 3 (fwd + 2x bwd) · 4·D·(T+1)/2 · H · L = 3·4·{c.HeadDim}·{(seqLen + 1) / 2.0}·{c.NumAttentionHeads}·{c.NumHiddenLayers} = {Attention(c, seqLen) / 1e6:F2} MFLOP";
        yield return $"  full: 6·N + A = {PerToken(c, seqLen, 0) / 1e9:F4} GFLOP/token (2 fwd + 2 input grad + 2 weight grad per weight)";
        yield return $"  LoRA r={loraRank}: 4·N + 6·L·R + A, R = r·Σ(in+out) = {lora:N0} adapter weights per block => {PerToken(c, seqLen, loraRank) / 1e9:F4} GFLOP/token " +
            "(frozen base: fwd + input grad only)";
    }
}
