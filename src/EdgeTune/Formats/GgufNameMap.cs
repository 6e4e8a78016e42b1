using System.Text.RegularExpressions;

namespace EdgeTune.Formats;

/// <summary>
/// One family's table of llama.cpp (GGUF) tensor names ↔ Hugging Face names: global tensors
/// (<c>token_embd</c> ↔ <c>model.embed_tokens</c>) and per-layer ones (<c>blk.N.attn_q</c> ↔
/// <c>model.layers.N.self_attn.q_proj</c>). The suffix (<c>.weight</c>, <c>.bias</c>) carries over; names outside
/// the table map to null.
/// </summary>
public sealed partial class GgufNameMap
{
    private readonly (string Gguf, string Hf)[] _global;
    private readonly (string Gguf, string Hf)[] _perLayer;

    public GgufNameMap(IEnumerable<(string Gguf, string Hf)> global, IEnumerable<(string Gguf, string Hf)> perLayer)
    {
        _global = global.ToArray();
        _perLayer = perLayer.ToArray();
    }

    private static readonly (string, string)[] CommonGlobal =
    [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ];

    /// <summary>Llama, Mistral, Qwen2 and Qwen3 (whose q/k norms are extra rows of the same table).</summary>
    public static GgufNameMap Llama { get; } = new(CommonGlobal,
    [
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("attn_q_norm", "self_attn.q_norm"),
        ("attn_k_norm", "self_attn.k_norm"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("attn_norm", "input_layernorm"),
        ("ffn_norm", "post_attention_layernorm"),
    ]);

    /// <summary>The tables with other rows added (a family that extends Llama's names).</summary>
    public GgufNameMap With(IEnumerable<(string Gguf, string Hf)> global, IEnumerable<(string Gguf, string Hf)> perLayer) =>
        new(global.Concat(_global.Where(g => !global.Any(n => n.Gguf == g.Gguf || n.Hf == g.Hf))),
            perLayer.Concat(_perLayer.Where(g => !perLayer.Any(n => n.Gguf == g.Gguf || n.Hf == g.Hf))));

    [GeneratedRegex(@"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex GgufLayer();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.([a-z_]+\.[a-z_]+|[a-z_]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex HfLayer();

    [GeneratedRegex(@"^([a-z_.]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex WithSuffix();

    /// <summary>The HF name for a llama.cpp name, or null when the table has none.</summary>
    public string? ToHf(string ggufName)
    {
        var m = GgufLayer().Match(ggufName);
        if (m.Success)
        {
            foreach (var (g, h) in _perLayer)
                if (g == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{h}.{m.Groups[3].Value}";
            return null;
        }
        var s = WithSuffix().Match(ggufName);
        if (!s.Success) return null;
        foreach (var (g, h) in _global)
            if (g == s.Groups[1].Value) return $"{h}.{s.Groups[2].Value}";
        return null;
    }

    /// <summary>The llama.cpp name for an HF name, or null when the table has none.</summary>
    public string? ToGguf(string hfName)
    {
        var m = HfLayer().Match(hfName);
        if (m.Success)
        {
            foreach (var (g, h) in _perLayer)
                if (h == m.Groups[2].Value) return $"blk.{m.Groups[1].Value}.{g}.{m.Groups[3].Value}";
            return null;
        }
        var s = WithSuffix().Match(hfName);
        if (!s.Success) return null;
        foreach (var (g, h) in _global)
            if (h == s.Groups[1].Value) return $"{g}.{s.Groups[2].Value}";
        return null;
    }
}
