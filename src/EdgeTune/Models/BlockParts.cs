using EdgeTune.Formats;
using EdgeTune.Nn;

namespace EdgeTune.Models;

/// <summary>Sub-modules several families build the same way, named as Hugging Face names them.</summary>
public static class BlockParts
{
    /// <summary><c>self_attn</c> with separate <c>q_proj</c> [Hq·D, C], <c>k_proj</c>/<c>v_proj</c> [Hkv·D, C] (optional
    /// bias) and <c>o_proj</c> [C, Hq·D] (optional bias) under <paramref name="prefix"/> ("model.layers.N.").</summary>
    public static Module Attention(WeightBinder w, string prefix, HfConfig c, bool qkvBias, bool outputBias)
    {
        var attn = new Module();
        attn.Add("q_proj", w.Linear(prefix + "self_attn.q_proj", c.QueryDim, c.HiddenSize, qkvBias));
        attn.Add("k_proj", w.Linear(prefix + "self_attn.k_proj", c.KeyValueDim, c.HiddenSize, qkvBias));
        attn.Add("v_proj", w.Linear(prefix + "self_attn.v_proj", c.KeyValueDim, c.HiddenSize, qkvBias));
        attn.Add("o_proj", w.Linear(prefix + "self_attn.o_proj", c.HiddenSize, c.QueryDim, outputBias));
        return attn;
    }

    /// <summary><c>mlp</c> with <c>gate_proj</c>, <c>up_proj</c> [F, C] and <c>down_proj</c> [C, F] under <paramref name="prefix"/>.</summary>
    public static Module GatedMlp(WeightBinder w, string prefix, HfConfig c, bool bias = false)
    {
        var mlp = new Module();
        mlp.Add("gate_proj", w.Linear(prefix + "mlp.gate_proj", c.IntermediateSize, c.HiddenSize, bias));
        mlp.Add("up_proj", w.Linear(prefix + "mlp.up_proj", c.IntermediateSize, c.HiddenSize, bias));
        mlp.Add("down_proj", w.Linear(prefix + "mlp.down_proj", c.HiddenSize, c.IntermediateSize, bias));
        return mlp;
    }
}
