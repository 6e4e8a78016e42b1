using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Llama;

/// <summary>The training forward: the same network as <see cref="Forward(ReadOnlySpan{int}, Generation.KvCache, Span{float})"/>,
/// recorded on a tape, ending in the fused, vocabulary-chunked LM-head cross-entropy.</summary>
public sealed partial class LlamaModel
{
    /// <summary>When true, <see cref="Loss"/> runs each decoder block through <see cref="CheckpointOp"/>:
    /// the tape keeps only the block inputs and recomputes each block's activations in backward
    /// (less memory, about one more forward of compute). Gradients are bit-identical either way.</summary>
    public bool ActivationCheckpointing { get; set; }

    /// <summary>The generator that randomness inside blocks (adapter dropout) draws from, if any: checkpointed
    /// blocks replay it when they recompute, so their gradients match the forward that was run.</summary>
    public Rng? BlockRng { get; set; }

    /// <summary>
    /// Mean cross-entropy of predicting <paramref name="targets"/> from <paramref name="tokens"/>, both
    /// [B·T] row-major (batch <paramref name="batch"/>, sequence <paramref name="time"/>, positions 0..T−1
    /// in every row). Targets equal to <see cref="CrossEntropy.IgnoreIndex"/> are left out (prompt
    /// tokens, padding). Works for F32 and (for gradient checks) F64 parameters.
    /// </summary>
    public Variable Loss(Tape tape, int[] tokens, int[] targets, int batch, int time, int vocabChunk = CrossEntropy.DefaultChunk)
    {
        if (batch <= 0 || time <= 0 || tokens.Length != batch * time || targets.Length != tokens.Length)
            throw new ShapeException($"LlamaModel.Loss: tokens ({tokens.Length}) and targets ({targets.Length}) must both hold B×T = {batch}×{time} ids");
        var h = Hidden(tape, tokens, batch, time);
        return QuantizedHead is { } qh
            ? tape.LmHeadCrossEntropy(h, qh, targets, vocabChunk)
            : tape.LmHeadCrossEntropy(h, LmHead, targets, vocabChunk);
    }

    /// <summary>
    /// The training forward up to the LM head: the final-norm hidden states (B·T, C) of
    /// <paramref name="tokens"/> [B·T] row-major, recorded on <paramref name="tape"/>. <see cref="Loss"/> is
    /// this followed by the fused LM-head cross-entropy; other heads/losses (distillation) start here.
    /// </summary>
    public Variable Hidden(Tape tape, int[] tokens, int batch, int time)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ArgumentNullException.ThrowIfNull(tokens);
        if (batch <= 0 || time <= 0 || tokens.Length != batch * time)
            throw new ShapeException($"LlamaModel.Hidden: tokens ({tokens.Length}) must hold B×T = {batch}×{time} ids");
        int hq = Config.NumAttentionHeads, hkv = Config.NumKeyValueHeads, d = Config.HeadDim;
        double eps = Config.RmsNormEps;
        int window = AttentionWindow;
        var rope = RopeFor(time);

        var x = QuantizedEmbed is { } qe ? tape.Embedding(qe, tokens) : tape.Embedding(Embed, tokens); // (B·T, C)
        foreach (var layer in Layers)
        {
            if (ActivationCheckpointing && tape.IsRecording)
                x = tape.Checkpoint((t, input) => Block(t, layer, input, batch, time, hq, hkv, d, eps, window, rope), x, BlockRng);
            else
                x = Block(tape, layer, x, batch, time, hq, hkv, d, eps, window, rope);
        }
        return tape.RmsNorm(x, FinalNorm, eps);
    }

    /// <summary>One pre-norm decoder block on the tape: x (B·T, C) → x + attn(norm x) → + mlp(norm ·).</summary>
    internal Variable Block(Tape tape, LlamaLayer layer, Variable x, int batch, int time, int hq, int hkv, int d, double eps, int window, RopeTable rope)
    {
        var h = tape.RmsNorm(x, layer.AttnNorm, eps);
        var q = tape.Rope(tape.Reshape(layer.Q.Forward(tape, h), batch, time, hq, d), rope, RopeStyle);
        var k = tape.Rope(tape.Reshape(layer.K.Forward(tape, h), batch, time, hkv, d), rope, RopeStyle);
        var v = layer.V.Forward(tape, h);
        var a = tape.Attention(q, k, v, batch, time, hq, hkv, d, window);
        x = tape.Add(x, layer.O.Forward(tape, tape.Reshape(a, batch * time, hq * d)));
        h = tape.RmsNorm(x, layer.FfnNorm, eps);
        var s = tape.SwiGlu(layer.Gate.Forward(tape, h), layer.Up.Forward(tape, h));
        return tape.Add(x, layer.Down.Forward(tape, s));
    }
}
