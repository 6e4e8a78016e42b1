using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// One post-norm BERT block, written once on the <see cref="Tape"/> (training records it; inference runs the same
/// code on a non-recording tape): a = LN(x + dense(attn(query(x), key(x), value(x)))),
/// y = LN(a + dense₂(gelu(dense₁(a)))). Its projections are child modules under the transformers names
/// (<c>attention.self.query</c>, <c>attention.output.dense</c>, <c>intermediate.dense</c>, <c>output.dense</c>), so an
/// adapter swapped in by path takes effect at once; its LayerNorm weights are parameters it holds.
/// </summary>
public sealed class BertLayer : Module
{
    private readonly BertConfig _config;
    private readonly Parameter _attnLnW, _attnLnB, _outLnW, _outLnB;
    private readonly Module _self, _attnOut, _intermediate, _output;

    /// <summary>Builds block <paramref name="index"/> over weights named <c>encoder.layer.{index}.…</c>.</summary>
    public BertLayer(BertConfig config, WeightBinder w, int index)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(w);
        _config = config;
        Index = index;
        int h = config.HiddenSize, f = config.IntermediateSize;
        string p = $"encoder.layer.{index}.";
        var attention = Add("attention", new Module());
        _self = attention.Add("self", new Module());
        _self.Add("query", w.Linear(p + "attention.self.query", h, h, bias: true));
        _self.Add("key", w.Linear(p + "attention.self.key", h, h, bias: true));
        _self.Add("value", w.Linear(p + "attention.self.value", h, h, bias: true));
        _attnOut = attention.Add("output", new Module());
        _attnOut.Add("dense", w.Linear(p + "attention.output.dense", h, h, bias: true));
        _attnLnW = _attnOut.AddParameter("LayerNorm.weight", w.Vector(p + "attention.output.LayerNorm.weight", h));
        _attnLnB = _attnOut.AddParameter("LayerNorm.bias", w.Vector(p + "attention.output.LayerNorm.bias", h));
        _intermediate = Add("intermediate", new Module());
        _intermediate.Add("dense", w.Linear(p + "intermediate.dense", f, h, bias: true));
        _output = Add("output", new Module());
        _output.Add("dense", w.Linear(p + "output.dense", h, f, bias: true));
        _outLnW = _output.AddParameter("LayerNorm.weight", w.Vector(p + "output.LayerNorm.weight", h));
        _outLnB = _output.AddParameter("LayerNorm.bias", w.Vector(p + "output.LayerNorm.bias", h));
    }

    /// <summary>Position of the block in the stack.</summary>
    public int Index { get; }

    /// <summary>x (B·T, C) → (B·T, C); <paramref name="mask"/> [B·T] marks the keys attended to (0 = padding).</summary>
    public Variable Forward(Tape tape, Variable x, int[] mask, int batch, int time)
    {
        ArgumentNullException.ThrowIfNull(tape);
        var c = _config;
        var q = _self.Get<ILinear>("query").Forward(tape, x);
        var k = _self.Get<ILinear>("key").Forward(tape, x);
        var v = _self.Get<ILinear>("value").Forward(tape, x);
        var ctx = tape.MaskedAttention(q, k, v, mask, batch, time, c.Heads, c.HeadDim);
        var a = tape.LayerNorm(tape.Add(_attnOut.Get<ILinear>("dense").Forward(tape, ctx), x), _attnLnW, _attnLnB, c.LayerNormEps);
        var up = tape.Gelu(_intermediate.Get<ILinear>("dense").Forward(tape, a), GeluApproximation.Exact);
        return tape.LayerNorm(tape.Add(_output.Get<ILinear>("dense").Forward(tape, up), a), _outLnW, _outLnB, c.LayerNormEps);
    }
}
