using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>The training forward: the family's blocks on a <see cref="TapeForward"/>, ending in the fused,
/// vocabulary-chunked LM-head cross-entropy.</summary>
public sealed partial class DecoderModel
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
            throw new ShapeException($"DecoderModel.Loss: tokens ({tokens.Length}) and targets ({targets.Length}) must both hold B×T = {batch}×{time} ids");
        if (FinalLogitSoftcap is not null)
            throw new NotSupportedException($"{Config.ModelType}: training with final_logit_softcapping is not supported (the fused LM-head loss has no soft-cap)");
        var h = Hidden(tape, tokens, batch, time);
        return Head.Loss(tape, h, targets, vocabChunk);
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
            throw new ShapeException($"DecoderModel.Hidden: tokens ({tokens.Length}) must hold B×T = {batch}×{time} ids");
        if (time > MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(time), time, $"DecoderModel.Hidden: sequences of {time} positions exceed the {MaxPositions} this model supports");
        var f = new TapeForward(tape, batch, time);
        var x = Embedding.Forward(tape, tokens); // (B·T, C)
        double scale = EmbeddingScale;
        if (scale != 1.0) x = tape.Scale(x, scale);
        foreach (var layer in Layers)
        {
            if (ActivationCheckpointing && tape.IsRecording)
                x = tape.Checkpoint((t, input) => layer.Forward(new TapeForward(t, batch, time), input, time), x, BlockRng);
            else
                x = layer.Forward(f, x, time);
        }
        return tape.RmsNorm(x, FinalNorm, Config.RmsNormEps);
    }
}
