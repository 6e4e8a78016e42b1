using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>
/// The operations a network definition is written in, so that one definition serves every use: the tape
/// (training, with activation checkpointing), the KV-cache runner (prefill and one-token decode) and the
/// memory planner (a shape-only pass). Values <typeparamref name="TX"/> are row matrices (N, W) with
/// N = B·T rows in batch-major, time-minor order; each backend decides what a value is (a tape
/// <see cref="Variable"/>, a scratch buffer, a node of the planner's liveness graph).
/// </summary>
/// <remarks>Legend: N rows = B·T, C hidden, H heads, D head size, F feed-forward width.</remarks>
public interface IForward<TX>
{
    /// <summary>x (N, in) → (N, out) through any <see cref="ILinear"/> (plain, quantized, LoRA ...).</summary>
    TX Linear(ILinear layer, TX x);

    /// <summary>RMS normalisation of x (N, W) in groups of w's length L (W a multiple of L: L = D normalises each
    /// head, as Qwen3's and Gemma 3's q/k norms do) → (N, W).</summary>
    TX RmsNorm(TX x, Parameter weight, double eps);

    /// <summary>Rotary embedding of x (N, H·D) for the positions of its rows → (N, H·D).</summary>
    TX Rope(TX x, int heads, int headDim, RopeTable table, RopeStyle style);

    /// <summary>Causal GQA attention: q (N, Hq·D), k, v (N, Hkv·D) → (N, Hq·D). The cache runner appends k and v
    /// to layer <see cref="AttentionSpec.Layer"/> of its cache first.</summary>
    TX Attention(TX q, TX k, TX v, in AttentionSpec spec);

    /// <summary>a + b, same shapes.</summary>
    TX Add(TX a, TX b);

    /// <summary>silu(gate) ⊙ up, (N, F) each.</summary>
    TX SwiGlu(TX gate, TX up);

    /// <summary>gelu_tanh(gate) ⊙ up, (N, F) each.</summary>
    TX GeGlu(TX gate, TX up);

    /// <summary>Columns [start, start+count) of x (N, W) → (N, count): the parts of a fused projection.</summary>
    TX Columns(TX x, int start, int count);

    /// <summary>s·x.</summary>
    TX Scale(TX x, double s);
}

/// <summary>What attention needs besides q, k, v: the decoder layer (its cache slot), head counts and size,
/// the sliding window (0 = full causal) and the score scale.</summary>
public readonly record struct AttentionSpec(int Layer, int HeadsQ, int HeadsKv, int HeadDim, int Window, double Scale);
