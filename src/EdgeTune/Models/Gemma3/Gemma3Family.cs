using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Gemma3;

/// <summary>Gemma 3's text settings beyond the common config, read from config.json (or GGUF metadata).</summary>
/// <param name="QueryPreAttnScalar">Attention scores are scaled by its inverse square root.</param>
/// <param name="SlidingLayers">Per layer: true for sliding-window (local) attention, false for global.</param>
/// <param name="SlidingWindow">Window of the local layers.</param>
/// <param name="LocalRopeTheta">rope base of the local layers (<c>rope_local_base_freq</c>).</param>
/// <param name="FinalLogitSoftcap">Gemma 2 style final soft-capping, or null.</param>
public sealed record Gemma3Settings(double QueryPreAttnScalar, bool[] SlidingLayers, int SlidingWindow, double LocalRopeTheta, double? FinalLogitSoftcap)
{
    /// <summary>The settings of <paramref name="c"/>: <c>layer_types</c>, else <c>sliding_window_pattern</c> (every
    /// n-th layer global; default 6, as Gemma 3 and llama.cpp use).</summary>
    public static Gemma3Settings Of(HfConfig c)
    {
        var sliding = new bool[c.NumHiddenLayers];
        if (c.RawStringList("layer_types") is { } types)
        {
            if (types.Count != c.NumHiddenLayers)
                throw new CheckpointFormatException("config", $"field 'layer_types' has {types.Count} entries for {c.NumHiddenLayers} layers", "layer_types");
            for (int i = 0; i < sliding.Length; i++)
                sliding[i] = types[i] switch
                {
                    "sliding_attention" => true,
                    "full_attention" => false,
                    _ => throw new CheckpointFormatException("config", $"field 'layer_types' has unknown layer type '{types[i]}' (sliding_attention or full_attention expected)", "layer_types"),
                };
        }
        else
        {
            int pattern = (int)(c.RawDouble("sliding_window_pattern") ?? c.RawDouble("_sliding_window_pattern") ?? 6);
            for (int i = 0; i < sliding.Length; i++) sliding[i] = (i + 1) % pattern != 0;
        }
        if (c.RawDouble("attn_logit_softcapping") is double a)
            throw new NotSupportedException($"gemma3: attn_logit_softcapping = {a} is not supported (Gemma 3 checkpoints set it to null)");
        return new Gemma3Settings(
            c.RawDouble("query_pre_attn_scalar") ?? c.HeadDim,
            sliding,
            c.SlidingWindow ?? 4096,
            c.RawDouble("rope_local_base_freq") ?? 10000.0,
            c.RawDouble("final_logit_softcapping"));
    }
}

/// <summary>
/// Gemma 3 text (<c>gemma3_text</c>, and the text tower of <c>gemma3</c> GGUFs): RMSNorm multiplying by (1 + w) (kept
/// as the multiplier in memory, <see cref="NormOffset"/>), four norms per block, q/k norms, embeddings scaled by
/// √hidden, GeGLU with tanh-GELU, sliding-window local layers with their own rope base and global layers with
/// <c>rope_theta</c> (+ <c>rope_scaling</c>), attention scale <c>query_pre_attn_scalar</c>^−½, tied head.
/// </summary>
public sealed class Gemma3Family : DecoderFamily
{
    public static Gemma3Family Instance { get; } = new();

    public override string Name => "gemma3";
    public override IReadOnlyList<string> ModelTypes { get; } = ["gemma3_text", "gemma3"];

    public override DecoderLayer CreateLayer(IDecoderContext context, WeightBinder weights, int index) =>
        new Gemma3Block(context, weights, index, Gemma3Settings.Of(context.Config));

    public override void Validate(HfConfig config, string source)
    {
        if (config.HiddenAct is not ("gelu_pytorch_tanh" or "gelu_tanh") && config.RawString("hidden_activation") is not (null or "gelu_pytorch_tanh"))
            throw new CheckpointFormatException(source, $"gemma3: activation '{config.RawString("hidden_activation") ?? config.HiddenAct}' is not supported (gelu_pytorch_tanh expected)", "hidden_activation");
        Gemma3Settings.Of(config);
    }

    public override double EmbeddingScale(HfConfig config) => Math.Sqrt(config.HiddenSize);

    public override double? FinalLogitSoftcap(HfConfig config) => Gemma3Settings.Of(config).FinalLogitSoftcap;

    public override float NormOffset => 1f;

    public override (double[] InverseFrequencies, double AttentionFactor) Rope(HfConfig config, int kind)
    {
        if (kind == 0) return base.Rope(config, 0);
        return (RopeTable.InverseFrequencies(config.HeadDim, Gemma3Settings.Of(config).LocalRopeTheta), 1.0);
    }

    public override GgufNameMap GgufNames { get; } = GgufNameMap.Llama.With([],
    [
        ("post_attention_norm", "post_attention_layernorm"),
        ("ffn_norm", "pre_feedforward_layernorm"),
        ("post_ffw_norm", "post_feedforward_layernorm"),
    ]);

    public override string GgufArchitecture(HfConfig config) => "gemma3";

    public override string DefaultArchitecture(HfConfig config) => "Gemma3ForCausalLM";

    public override HfConfig FromGguf(GgufFile file, HfConfig common)
    {
        // llama.cpp's gemma3: every 6th layer global, local layers at rope base 10000, window from the file.
        int? window = file.Metadata.TryGetValue("gemma3.attention.sliding_window", out var w) ? w.AsInt32() : null;
        return (common with { ModelType = "gemma3_text", SlidingWindow = window ?? common.SlidingWindow, HiddenAct = "gelu_pytorch_tanh", TieWordEmbeddings = true })
            .WithRaw(("sliding_window_pattern", 6), ("rope_local_base_freq", 10000.0), ("query_pre_attn_scalar", (double)common.HeadDim));
    }

    public override List<KeyValuePair<string, GgufValue>> GgufMetadata(HfConfig config)
    {
        var s = Gemma3Settings.Of(config);
        for (int i = 0; i < s.SlidingLayers.Length; i++)
            if (s.SlidingLayers[i] != ((i + 1) % 6 != 0))
                throw new NotSupportedException("gemma3 GGUF: llama.cpp makes every 6th layer global; this config's layer_types differ");
        if (s.LocalRopeTheta != 10000.0)
            throw new NotSupportedException($"gemma3 GGUF: llama.cpp fixes the local rope base at 10000; this config has {s.LocalRopeTheta}");
        if (s.QueryPreAttnScalar != config.HeadDim)
            throw new NotSupportedException($"gemma3 GGUF: llama.cpp scales attention by head_dim^-1/2; query_pre_attn_scalar {s.QueryPreAttnScalar} differs from head_dim {config.HeadDim}");
        var m = base.GgufMetadata(config with { HeadDim = config.HeadDim });
        m.RemoveAll(kv => kv.Key.EndsWith(".attention.key_length", StringComparison.Ordinal) || kv.Key.EndsWith(".attention.value_length", StringComparison.Ordinal));
        m.Add(new("gemma3.attention.key_length", (uint)config.HeadDim));
        m.Add(new("gemma3.attention.value_length", (uint)config.HeadDim));
        m.Add(new("gemma3.attention.sliding_window", (uint)s.SlidingWindow));
        return m;
    }
}

/// <summary>One Gemma 3 block: <c>input_layernorm</c>, <c>self_attn.{q,k,v,o}_proj</c>, <c>self_attn.{q,k}_norm</c>,
/// <c>post_attention_layernorm</c>, <c>pre_feedforward_layernorm</c>, <c>mlp.{gate,up,down}_proj</c>,
/// <c>post_feedforward_layernorm</c>. Norm weights hold the multiplier (1 + HF's w).</summary>
public sealed class Gemma3Block : DecoderLayer
{
    private readonly Parameter _inputNorm, _qNorm, _kNorm, _postAttnNorm, _preFfnNorm, _postFfnNorm;
    private readonly Gemma3Settings _s;

    public Gemma3Block(IDecoderContext context, WeightBinder w, int i, Gemma3Settings settings) : base(context, i)
    {
        _s = settings;
        var c = context.Config;
        string p = $"model.layers.{i}.";
        _inputNorm = AddParameter("input_layernorm.weight", w.Vector(p + "input_layernorm.weight", c.HiddenSize));
        var attn = Add("self_attn", BlockParts.Attention(w, p, c, c.AttentionBias, c.AttentionBias));
        _qNorm = attn.AddParameter("q_norm.weight", w.Vector(p + "self_attn.q_norm.weight", c.HeadDim));
        _kNorm = attn.AddParameter("k_norm.weight", w.Vector(p + "self_attn.k_norm.weight", c.HeadDim));
        _postAttnNorm = AddParameter("post_attention_layernorm.weight", w.Vector(p + "post_attention_layernorm.weight", c.HiddenSize));
        _preFfnNorm = AddParameter("pre_feedforward_layernorm.weight", w.Vector(p + "pre_feedforward_layernorm.weight", c.HiddenSize));
        Add("mlp", BlockParts.GatedMlp(w, p, c));
        _postFfnNorm = AddParameter("post_feedforward_layernorm.weight", w.Vector(p + "post_feedforward_layernorm.weight", c.HiddenSize));
    }

    public override TX Forward<TX>(IForward<TX> f, TX x, int positions)
    {
        var c = Context.Config;
        int hq = c.NumAttentionHeads, hkv = c.NumKeyValueHeads, d = c.HeadDim;
        double eps = c.RmsNormEps;
        bool local = _s.SlidingLayers[Index];
        var attn = Get<Module>("self_attn");
        var mlp = Get<Module>("mlp");
        var rope = Context.Rope(local ? 1 : 0, positions);

        var h = f.RmsNorm(x, _inputNorm, eps);
        var q = f.Rope(f.RmsNorm(f.Linear(attn.Get<ILinear>("q_proj"), h), _qNorm, eps), hq, d, rope, Context.RopeStyle);
        var k = f.Rope(f.RmsNorm(f.Linear(attn.Get<ILinear>("k_proj"), h), _kNorm, eps), hkv, d, rope, Context.RopeStyle);
        var v = f.Linear(attn.Get<ILinear>("v_proj"), h);
        var a = f.Attention(q, k, v, new AttentionSpec(Index, hq, hkv, d, local ? _s.SlidingWindow : 0, 1.0 / Math.Sqrt(_s.QueryPreAttnScalar)));
        x = f.Add(x, f.RmsNorm(f.Linear(attn.Get<ILinear>("o_proj"), a), _postAttnNorm, eps));
        h = f.RmsNorm(x, _preFfnNorm, eps);
        var m = f.Linear(mlp.Get<ILinear>("down_proj"), f.GeGlu(f.Linear(mlp.Get<ILinear>("gate_proj"), h), f.Linear(mlp.Get<ILinear>("up_proj"), h)));
        return f.Add(x, f.RmsNorm(m, _postFfnNorm, eps));
    }
}
