using System.Text.Json;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Phi3;

/// <summary>Phi-3's rotary settings: the rotated share of each head and LongRoPE's per-frequency factors.</summary>
/// <param name="RotaryDim">Channels rotated at the start of each head (<c>partial_rotary_factor</c> × head_dim).</param>
/// <param name="ShortFactor">LongRoPE factors used up to <paramref name="OriginalMaxPositions"/> (null without longrope).</param>
/// <param name="LongFactor">LongRoPE factors used beyond it.</param>
/// <param name="OriginalMaxPositions"><c>original_max_position_embeddings</c>.</param>
/// <param name="AttentionFactor">The factor on cos/sin: √(1 + ln(max/original)/ln(original)) when the context is extended.</param>
public sealed record Phi3Rope(int RotaryDim, double[]? ShortFactor, double[]? LongFactor, int OriginalMaxPositions, double AttentionFactor)
{
    public static Phi3Rope Of(HfConfig c)
    {
        double partial = c.RawDouble("partial_rotary_factor") ?? 1.0;
        int rot = (int)(c.HeadDim * partial);
        if (rot <= 0 || rot % 2 != 0 || rot > c.HeadDim)
            throw new CheckpointFormatException("config", $"partial_rotary_factor {partial} × head_dim {c.HeadDim} = {rot} is not a positive even channel count", "partial_rotary_factor");
        int original = (int)(c.RawDouble("original_max_position_embeddings") ?? c.MaxPositionEmbeddings);
        if (c.RopeScaling is not { } rs) return new(rot, null, null, original, 1.0);
        if (rs.RopeType is not ("longrope" or "su"))
            throw new NotSupportedException($"phi3: rope_scaling type '{rs.RopeType}' is not supported (longrope expected)");
        double[] Factors(string name)
        {
            if (!c.Raw.TryGetValue("rope_scaling", out var e) || e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var a) || a.ValueKind != JsonValueKind.Array)
                throw new CheckpointFormatException("config", $"rope_scaling longrope needs '{name}'", "rope_scaling");
            var f = a.EnumerateArray().Select(x => x.GetDouble()).ToArray();
            if (f.Length != rot / 2) throw new CheckpointFormatException("config", $"rope_scaling '{name}' has {f.Length} factors; {rot / 2} expected", "rope_scaling");
            return f;
        }
        double scale = (double)c.MaxPositionEmbeddings / original;
        double factor = scale <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(scale) / Math.Log(original));
        return new(rot, Factors("short_factor"), Factors("long_factor"), original, factor);
    }
}

/// <summary>
/// Phi-3 / Phi-3.5 / Phi-4-mini (<c>phi3</c>): fused <c>qkv_proj</c> and <c>gate_up_proj</c> (gate first), untied
/// head, partial rotary (<c>partial_rotary_factor</c>) and LongRoPE (<c>rope_scaling</c> longrope: per-frequency
/// short/long factors and an attention factor) for the 128k variants. Inference and training use the short factors
/// (contexts up to <c>original_max_position_embeddings</c>); longer contexts are refused.
/// </summary>
public sealed class Phi3Family : DecoderFamily
{
    public static Phi3Family Instance { get; } = new();

    public override string Name => "phi3";
    public override IReadOnlyList<string> ModelTypes { get; } = ["phi3"];

    public override DecoderLayer CreateLayer(IDecoderContext context, WeightBinder weights, int index) => new Phi3Block(context, weights, index);

    public override void Validate(HfConfig config, string source) => Phi3Rope.Of(config);

    /// <summary>With LongRoPE only the short factors are implemented: contexts up to <c>original_max_position_embeddings</c>.</summary>
    public override int MaxPositions(HfConfig config) =>
        Phi3Rope.Of(config) is { ShortFactor: not null } r ? Math.Min(r.OriginalMaxPositions, config.MaxPositionEmbeddings) : config.MaxPositionEmbeddings;

    public override (double[] InverseFrequencies, double AttentionFactor) Rope(HfConfig config, int kind)
    {
        var r = Phi3Rope.Of(config);
        double[] f = RopeTable.InverseFrequencies(r.RotaryDim, config.RopeTheta);
        if (r.ShortFactor is { } s)
            for (int i = 0; i < f.Length; i++) f[i] /= s[i];
        return (f, r.AttentionFactor);
    }

    public override GgufNameMap GgufNames { get; } = GgufNameMap.Llama.With([],
    [
        ("attn_qkv", "self_attn.qkv_proj"),
        ("ffn_up", "mlp.gate_up_proj"),
    ]);

    public override string DefaultArchitecture(HfConfig config) => "Phi3ForCausalLM";

    public override HfConfig FromGguf(GgufFile file, HfConfig common)
    {
        int? rot = file.Metadata.TryGetValue("phi3.rope.dimension_count", out var r) ? r.AsInt32() : null;
        int? original = file.Metadata.TryGetValue("phi3.rope.scaling.original_context_length", out var o) ? o.AsInt32() : null;
        // fused gate_up: llama.cpp's feed_forward_length is the width of one half
        var cfg = common with { ModelType = "phi3", RopeScaling = null };
        if (rot is int rd && rd != common.HeadDim) cfg = cfg.WithRaw(("partial_rotary_factor", (double)rd / common.HeadDim));
        if (original is int om) cfg = cfg.WithRaw(("original_max_position_embeddings", om));
        if (file.Contains("rope_factors_short.weight") && file.Contains("rope_factors_long.weight"))
        {
            using var sh = file.GetTensor("rope_factors_short.weight");
            using var lo = file.GetTensor("rope_factors_long.weight");
            var json = $"{{\"type\":\"longrope\",\"short_factor\":[{string.Join(",", sh.ToFloatArray().Select(v => ((double)v).ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]," +
                       $"\"long_factor\":[{string.Join(",", lo.ToFloatArray().Select(v => ((double)v).ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]}}";
            using var doc = JsonDocument.Parse(json);
            cfg = (cfg with { RopeScaling = new RopeScaling("longrope") }).WithRaw(("rope_scaling", doc.RootElement.Clone()));
        }
        return cfg;
    }

    public override List<KeyValuePair<string, GgufValue>> GgufMetadata(HfConfig config)
    {
        var r = Phi3Rope.Of(config);
        var m = base.GgufMetadata(config);
        m.RemoveAll(kv => kv.Key is "phi3.rope.dimension_count");
        m.Add(new("phi3.rope.dimension_count", (uint)r.RotaryDim));
        if (r.ShortFactor is not null)
        {
            m.Add(new("phi3.rope.scaling.original_context_length", (uint)r.OriginalMaxPositions));
            m.Add(new("phi3.rope.scaling.attn_factor", (float)r.AttentionFactor));
        }
        return m;
    }

    public override IEnumerable<KeyValuePair<string, Tensor>> GgufExtraTensors(HfConfig config)
    {
        var r = Phi3Rope.Of(config);
        if (r.ShortFactor is null || r.LongFactor is null) yield break;
        yield return new("rope_factors_long.weight", Tensor.From<float>(r.LongFactor.Select(v => (float)v).ToArray(), [r.LongFactor.Length], "rope_factors_long.weight"));
        yield return new("rope_factors_short.weight", Tensor.From<float>(r.ShortFactor.Select(v => (float)v).ToArray(), [r.ShortFactor.Length], "rope_factors_short.weight"));
    }
}

/// <summary>One Phi-3 block: <c>input_layernorm</c>, <c>self_attn.qkv_proj</c> (rows q | k | v), <c>self_attn.o_proj</c>,
/// <c>post_attention_layernorm</c>, <c>mlp.gate_up_proj</c> (rows gate | up), <c>mlp.down_proj</c>.</summary>
public sealed class Phi3Block : DecoderLayer
{
    private readonly Parameter _attnNorm, _ffnNorm;

    public Phi3Block(IDecoderContext context, WeightBinder w, int i) : base(context, i)
    {
        var c = context.Config;
        string p = $"model.layers.{i}.";
        _attnNorm = AddParameter("input_layernorm.weight", w.Vector(p + "input_layernorm.weight", c.HiddenSize));
        var attn = Add("self_attn", new Module());
        attn.Add("qkv_proj", w.Linear(p + "self_attn.qkv_proj", c.QueryDim + 2 * c.KeyValueDim, c.HiddenSize));
        attn.Add("o_proj", w.Linear(p + "self_attn.o_proj", c.HiddenSize, c.QueryDim));
        _ffnNorm = AddParameter("post_attention_layernorm.weight", w.Vector(p + "post_attention_layernorm.weight", c.HiddenSize));
        var mlp = Add("mlp", new Module());
        mlp.Add("gate_up_proj", w.Linear(p + "mlp.gate_up_proj", 2 * c.IntermediateSize, c.HiddenSize));
        mlp.Add("down_proj", w.Linear(p + "mlp.down_proj", c.HiddenSize, c.IntermediateSize));
    }

    public override TX Forward<TX>(IForward<TX> f, TX x, int positions)
    {
        var c = Context.Config;
        int hq = c.NumAttentionHeads, hkv = c.NumKeyValueHeads, d = c.HeadDim, qd = c.QueryDim, kvd = c.KeyValueDim, ff = c.IntermediateSize;
        var attn = Get<Module>("self_attn");
        var mlp = Get<Module>("mlp");
        var rope = Context.Rope(0, positions);
        int window = c.SlidingWindow is int sw && c.UseSlidingWindow != false ? sw : 0;

        var h = f.RmsNorm(x, _attnNorm, c.RmsNormEps);
        var qkv = f.Linear(attn.Get<ILinear>("qkv_proj"), h);
        var q = f.Rope(f.Columns(qkv, 0, qd), hq, d, rope, Context.RopeStyle);
        var k = f.Rope(f.Columns(qkv, qd, kvd), hkv, d, rope, Context.RopeStyle);
        var v = f.Columns(qkv, qd + kvd, kvd);
        var a = f.Attention(q, k, v, new AttentionSpec(Index, hq, hkv, d, window, 1.0 / Math.Sqrt(d)));
        x = f.Add(x, f.Linear(attn.Get<ILinear>("o_proj"), a));
        h = f.RmsNorm(x, _ffnNorm, c.RmsNormEps);
        var gu = f.Linear(mlp.Get<ILinear>("gate_up_proj"), h);
        var s = f.SwiGlu(f.Columns(gu, 0, ff), f.Columns(gu, ff, ff));
        return f.Add(x, f.Linear(mlp.Get<ILinear>("down_proj"), s));
    }
}
