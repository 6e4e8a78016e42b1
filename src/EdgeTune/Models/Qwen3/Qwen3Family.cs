using EdgeTune.Autograd;
using EdgeTune.Nn;

namespace EdgeTune.Models.Qwen3;

/// <summary>
/// Qwen3 (0.6B/1.7B/4B/8B dense): the Llama block with an explicit <c>head_dim</c> (q_proj's rows need not equal
/// hidden_size), no q/k/v bias, and RMSNorm over each head of q and k (<c>q_norm</c>, <c>k_norm</c>, weight [D])
/// before RoPE (half-split pairing, as HF and llama.cpp's NEOX rope).
/// </summary>
public sealed class Qwen3Family : DecoderFamily
{
    public static Qwen3Family Instance { get; } = new();

    public override string Name => "qwen3";
    public override IReadOnlyList<string> ModelTypes { get; } = ["qwen3"];

    public override DecoderLayer CreateLayer(IDecoderContext context, WeightBinder weights, int index) => new Qwen3Block(context, weights, index);

    public override string DefaultArchitecture(Formats.HfConfig config) => "Qwen3ForCausalLM";
}

/// <summary>One Qwen3 block: <c>input_layernorm</c>, <c>self_attn.{q,k,v,o}_proj</c>, <c>self_attn.{q,k}_norm</c>,
/// <c>post_attention_layernorm</c>, <c>mlp.{gate,up,down}_proj</c>.</summary>
public sealed class Qwen3Block : DecoderLayer
{
    private readonly Parameter _attnNorm, _qNorm, _kNorm, _ffnNorm;

    public Qwen3Block(IDecoderContext context, WeightBinder w, int i) : base(context, i)
    {
        var c = context.Config;
        string p = $"model.layers.{i}.";
        _attnNorm = AddParameter("input_layernorm.weight", w.Vector(p + "input_layernorm.weight", c.HiddenSize));
        var attn = Add("self_attn", BlockParts.Attention(w, p, c, c.AttentionBias, c.AttentionBias));
        _qNorm = attn.AddParameter("q_norm.weight", w.Vector(p + "self_attn.q_norm.weight", c.HeadDim));
        _kNorm = attn.AddParameter("k_norm.weight", w.Vector(p + "self_attn.k_norm.weight", c.HeadDim));
        _ffnNorm = AddParameter("post_attention_layernorm.weight", w.Vector(p + "post_attention_layernorm.weight", c.HiddenSize));
        Add("mlp", BlockParts.GatedMlp(w, p, c));
    }

    public override TX Forward<TX>(IForward<TX> f, TX x, int positions)
    {
        var c = Context.Config;
        int hq = c.NumAttentionHeads, hkv = c.NumKeyValueHeads, d = c.HeadDim;
        var attn = Get<Module>("self_attn");
        var mlp = Get<Module>("mlp");
        var rope = Context.Rope(0, positions);
        int window = c.SlidingWindow is int sw && c.UseSlidingWindow == true ? sw : 0;

        var h = f.RmsNorm(x, _attnNorm, c.RmsNormEps);
        var q = f.Rope(f.RmsNorm(f.Linear(attn.Get<ILinear>("q_proj"), h), _qNorm, c.RmsNormEps), hq, d, rope, Context.RopeStyle);
        var k = f.Rope(f.RmsNorm(f.Linear(attn.Get<ILinear>("k_proj"), h), _kNorm, c.RmsNormEps), hkv, d, rope, Context.RopeStyle);
        var v = f.Linear(attn.Get<ILinear>("v_proj"), h);
        var a = f.Attention(q, k, v, new AttentionSpec(Index, hq, hkv, d, window, 1.0 / Math.Sqrt(d)));
        x = f.Add(x, f.Linear(attn.Get<ILinear>("o_proj"), a));
        h = f.RmsNorm(x, _ffnNorm, c.RmsNormEps);
        var s = f.SwiGlu(f.Linear(mlp.Get<ILinear>("gate_proj"), h), f.Linear(mlp.Get<ILinear>("up_proj"), h));
        return f.Add(x, f.Linear(mlp.Get<ILinear>("down_proj"), s));
    }
}
