using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Nn;

namespace EdgeTune.Models.Llama;

/// <summary>
/// The Llama family: Llama 1/2/3/3.1/3.2, SmolLM/SmolLM2, TinyLlama, llama2.c checkpoints, Mistral (sliding
/// window) and Qwen2/2.5 (q/k/v bias). Pre-norm blocks: RMSNorm → GQA attention with RoPE → residual,
/// RMSNorm → SwiGLU MLP → residual.
/// </summary>
public sealed class LlamaFamily : DecoderFamily
{
    public static LlamaFamily Instance { get; } = new();

    public override string Name => "llama";
    public override IReadOnlyList<string> ModelTypes { get; } = ["llama", "mistral", "qwen2"];

    public override DecoderLayer CreateLayer(IDecoderContext context, WeightBinder weights, int index) => new LlamaBlock(context, weights, index);
}

/// <summary>One Llama block: <c>input_layernorm</c>, <c>self_attn.{q,k,v,o}_proj</c>, <c>post_attention_layernorm</c>,
/// <c>mlp.{gate,up,down}_proj</c>.</summary>
public sealed class LlamaBlock : DecoderLayer
{
    private readonly Parameter _attnNorm, _ffnNorm;

    public LlamaBlock(IDecoderContext context, WeightBinder w, int i) : base(context, i)
    {
        var c = context.Config;
        string p = $"model.layers.{i}.";
        _attnNorm = AddParameter("input_layernorm.weight", w.Vector(p + "input_layernorm.weight", c.HiddenSize));
        Add("self_attn", BlockParts.Attention(w, p, c, c.AttentionBias, c.OutputBias));
        _ffnNorm = AddParameter("post_attention_layernorm.weight", w.Vector(p + "post_attention_layernorm.weight", c.HiddenSize));
        Add("mlp", BlockParts.GatedMlp(w, p, c, c.MlpBias));
    }

    public override TX Forward<TX>(IForward<TX> f, TX x, int positions)
    {
        var c = Context.Config;
        int hq = c.NumAttentionHeads, hkv = c.NumKeyValueHeads, d = c.HeadDim;
        var attn = Get<Module>("self_attn");
        var mlp = Get<Module>("mlp");
        var rope = Context.Rope(0, positions);
        int window = c.SlidingWindow is int sw && c.UseSlidingWindow != false ? sw : 0;

        var h = f.RmsNorm(x, _attnNorm, c.RmsNormEps);
        var q = f.Rope(f.Linear(attn.Get<ILinear>("q_proj"), h), hq, d, rope, Context.RopeStyle);
        var k = f.Rope(f.Linear(attn.Get<ILinear>("k_proj"), h), hkv, d, rope, Context.RopeStyle);
        var v = f.Linear(attn.Get<ILinear>("v_proj"), h);
        var a = f.Attention(q, k, v, new AttentionSpec(Index, hq, hkv, d, window, 1.0 / Math.Sqrt(d)));
        x = f.Add(x, f.Linear(attn.Get<ILinear>("o_proj"), a));
        h = f.RmsNorm(x, _ffnNorm, c.RmsNormEps);
        var s = f.SwiGlu(f.Linear(mlp.Get<ILinear>("gate_proj"), h), f.Linear(mlp.Get<ILinear>("up_proj"), h));
        return f.Add(x, f.Linear(mlp.Get<ILinear>("down_proj"), s));
    }
}
