using System.Text.RegularExpressions;

namespace EdgeTune.Formats;

/// <summary>
/// Maps llama.cpp tensor names (GGUF) to Hugging Face Llama-family names and back:
/// <c>token_embd</c> ↔ <c>model.embed_tokens</c>, <c>output_norm</c> ↔ <c>model.norm</c>,
/// <c>output</c> ↔ <c>lm_head</c>, and per layer <c>blk.N.X</c> ↔ <c>model.layers.N.Y</c> with
/// attn_q/k/v/output ↔ self_attn.q/k/v/o_proj, ffn_gate/up/down ↔ mlp.gate/up/down_proj,
/// attn_norm ↔ input_layernorm, ffn_norm ↔ post_attention_layernorm. The suffix (<c>.weight</c>,
/// <c>.bias</c>) carries over. Names outside the table map to null.
/// </summary>
public static partial class GgufTensorNames
{
    private static readonly (string Gguf, string Hf)[] Global =
    [
        ("token_embd", "model.embed_tokens"),
        ("output_norm", "model.norm"),
        ("output", "lm_head"),
    ];

    private static readonly (string Gguf, string Hf)[] PerLayer =
    [
        ("attn_q", "self_attn.q_proj"),
        ("attn_k", "self_attn.k_proj"),
        ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"),
        ("ffn_gate", "mlp.gate_proj"),
        ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
        ("attn_norm", "input_layernorm"),
        ("ffn_norm", "post_attention_layernorm"),
    ];

    [GeneratedRegex(@"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex GgufLayer();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.([a-z_]+\.[a-z_]+|[a-z_]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex HfLayer();

    [GeneratedRegex(@"^([a-z_.]+)\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex WithSuffix();

    /// <summary>The HF name for a llama.cpp name, or null when it is not a Llama tensor name.</summary>
    public static string? ToHf(string ggufName)
    {
        var m = GgufLayer().Match(ggufName);
        if (m.Success)
        {
            foreach (var (g, h) in PerLayer)
                if (g == m.Groups[2].Value) return $"model.layers.{m.Groups[1].Value}.{h}.{m.Groups[3].Value}";
            return null;
        }
        var s = WithSuffix().Match(ggufName);
        if (!s.Success) return null;
        foreach (var (g, h) in Global)
            if (g == s.Groups[1].Value) return $"{h}.{s.Groups[2].Value}";
        return null;
    }

    /// <summary>The llama.cpp name for an HF name, or null when it is not in the table.</summary>
    public static string? ToGguf(string hfName)
    {
        var m = HfLayer().Match(hfName);
        if (m.Success)
        {
            foreach (var (g, h) in PerLayer)
                if (h == m.Groups[2].Value) return $"blk.{m.Groups[1].Value}.{g}.{m.Groups[3].Value}";
            return null;
        }
        var s = WithSuffix().Match(hfName);
        if (!s.Success) return null;
        foreach (var (g, h) in Global)
            if (h == s.Groups[1].Value) return $"{g}.{s.Groups[2].Value}";
        return null;
    }

    /// <summary>True for the q and k projections (weights or biases), whose rows RoPE pairs up; takes either naming.</summary>
    public static bool IsRopeProjection(string name, out bool isKey)
    {
        string hf = ToHf(name) ?? name;
        isKey = hf.Contains(".self_attn.k_proj.", StringComparison.Ordinal);
        return isKey || hf.Contains(".self_attn.q_proj.", StringComparison.Ordinal);
    }
}
