using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>
/// <see cref="IForward{TX}"/> on a <see cref="Tape"/>: every operation is recorded for backward (when an input
/// needs a gradient). Values are 2-D variables (B·T, W); positions are 0..T−1 in every batch row.
/// </summary>
public sealed class TapeForward(Tape tape, int batch, int time) : IForward<Variable>
{
    public Tape Tape { get; } = tape ?? throw new ArgumentNullException(nameof(tape));
    public int Batch { get; } = batch;
    public int Time { get; } = time;
    private int Rows => Batch * Time;

    public Variable Linear(ILinear layer, Variable x) => layer.Forward(Tape, x);

    public Variable RmsNorm(Variable x, Parameter weight, double eps)
    {
        long len = weight.Value.ElementCount, width = x.ElementCount / Rows;
        if (width == len) return Tape.RmsNorm(x, weight, eps);
        var grouped = Tape.Reshape(x, checked((int)(x.ElementCount / len)), (int)len);
        return Tape.Reshape(Tape.RmsNorm(grouped, weight, eps), Rows, (int)width);
    }

    public Variable Rope(Variable x, int heads, int headDim, RopeTable table, RopeStyle style) =>
        Tape.Reshape(Tape.Rope(Tape.Reshape(x, Batch, Time, heads, headDim), table, style), Rows, heads * headDim);

    public Variable Attention(Variable q, Variable k, Variable v, in AttentionSpec spec) =>
        Tape.Attention(q, k, v, Batch, Time, spec.HeadsQ, spec.HeadsKv, spec.HeadDim, spec.Window, spec.Scale);

    public Variable Add(Variable a, Variable b) => Tape.Add(a, b);

    public Variable SwiGlu(Variable gate, Variable up) => Tape.SwiGlu(gate, up);

    public Variable GeGlu(Variable gate, Variable up) => Tape.Mul(Tape.Gelu(gate, GeluApproximation.Tanh), up);

    public Variable Columns(Variable x, int start, int count) => Tape.Columns(x, start, count);

    public Variable Scale(Variable x, double s) => Tape.Scale(x, s);
}
