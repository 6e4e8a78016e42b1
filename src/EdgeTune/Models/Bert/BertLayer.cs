using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// One post-norm BERT block, written once on <see cref="IEncoderForward{TX}"/> (training records it on the tape; inference
/// runs the same code on a non-recording tape; the memory planner runs it shape-only): a = LN(x + dense(attn(query(x), key(x), value(x)))),
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

    /// <summary>x (B·T, C) → (B·T, C) on the tape; <paramref name="mask"/> [B·T] marks the keys attended to (0 = padding).</summary>
    public Variable Forward(Tape tape, Variable x, int[] mask, int batch, int time)
    {
        ArgumentNullException.ThrowIfNull(tape);
        return Forward(new TapeEncoderForward(tape, mask, batch, time), x);
    }

    /// <summary>The block, written once for every backend (the tape, the memory planner's shape-only pass).</summary>
    public TX Forward<TX>(IEncoderForward<TX> f, TX x)
    {
        ArgumentNullException.ThrowIfNull(f);
        var c = _config;
        var q = f.Linear(_self.Get<ILinear>("query"), x);
        var k = f.Linear(_self.Get<ILinear>("key"), x);
        var v = f.Linear(_self.Get<ILinear>("value"), x);
        var ctx = f.MaskedAttention(q, k, v, c.Heads, c.HeadDim);
        var a = f.LayerNorm(f.Add(f.Linear(_attnOut.Get<ILinear>("dense"), ctx), x), _attnLnW, _attnLnB, c.LayerNormEps);
        var up = f.Gelu(f.Linear(_intermediate.Get<ILinear>("dense"), a));
        return f.LayerNorm(f.Add(f.Linear(_output.Get<ILinear>("dense"), up), a), _outLnW, _outLnB, c.LayerNormEps);
    }
}
