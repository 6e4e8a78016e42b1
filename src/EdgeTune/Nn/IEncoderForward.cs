using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>
/// The operations of a bidirectional encoder block (BERT) besides <see cref="IForward{TX}"/>'s, so that the encoder's block
/// is written once (<see cref="Models.Bert.BertLayer.Forward{TX}"/>) and run on the tape (training and inference) and by the
/// memory planner's shape-only pass. The key padding mask, batch and sequence length belong to the backend.
/// </summary>
public interface IEncoderForward<TX> : IForward<TX>
{
    /// <summary>LayerNorm of each row of x (N, W) with weight and bias (W).</summary>
    TX LayerNorm(TX x, Parameter weight, Parameter bias, double eps);

    /// <summary>Bidirectional multi-head attention: q, k, v (N, H·D) → (N, H·D); every query of a sequence sees the keys of
    /// that sequence that the backend's padding mask attends to, scaled by 1/√D.</summary>
    TX MaskedAttention(TX q, TX k, TX v, int heads, int headDim);

    /// <summary>Exact (erf) GELU of x.</summary>
    TX Gelu(TX x);
}

/// <summary><see cref="IEncoderForward{TX}"/> on a <see cref="Tape"/> over sequences whose keys are attended where
/// <paramref name="mask"/> [B·T] is not 0.</summary>
public sealed class TapeEncoderForward(Tape tape, int[] mask, int batch, int time) : IEncoderForward<Variable>
{
    private readonly TapeForward _tape = new(tape, batch, time);
    private readonly int[] _mask = mask ?? throw new ArgumentNullException(nameof(mask));

    public Tape Tape => _tape.Tape;

    public Variable LayerNorm(Variable x, Parameter weight, Parameter bias, double eps) => Tape.LayerNorm(x, weight, bias, eps);

    public Variable MaskedAttention(Variable q, Variable k, Variable v, int heads, int headDim) =>
        Tape.MaskedAttention(q, k, v, _mask, _tape.Batch, _tape.Time, heads, headDim);

    public Variable Gelu(Variable x) => Tape.Gelu(x, GeluApproximation.Exact);

    public Variable Linear(ILinear layer, Variable x) => _tape.Linear(layer, x);
    public Variable RmsNorm(Variable x, Parameter weight, double eps) => _tape.RmsNorm(x, weight, eps);
    public Variable Rope(Variable x, int heads, int headDim, RopeTable table, RopeStyle style) => _tape.Rope(x, heads, headDim, table, style);
    public Variable Attention(Variable q, Variable k, Variable v, in AttentionSpec spec) => _tape.Attention(q, k, v, spec);
    public Variable Add(Variable a, Variable b) => _tape.Add(a, b);
    public Variable SwiGlu(Variable gate, Variable up) => _tape.SwiGlu(gate, up);
    public Variable GeGlu(Variable gate, Variable up) => _tape.GeGlu(gate, up);
    public Variable Columns(Variable x, int start, int count) => _tape.Columns(x, start, count);
    public Variable Scale(Variable x, double s) => _tape.Scale(x, s);
}
