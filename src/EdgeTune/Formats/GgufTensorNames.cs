namespace EdgeTune.Formats;

/// <summary>
/// The Llama family's llama.cpp (GGUF) ↔ Hugging Face tensor names (<see cref="GgufNameMap.Llama"/>); other
/// families have their own <see cref="GgufNameMap"/>.
/// </summary>
public static class GgufTensorNames
{
    /// <summary>The HF name for a llama.cpp name, or null when it is not a Llama tensor name.</summary>
    public static string? ToHf(string ggufName) => GgufNameMap.Llama.ToHf(ggufName);

    /// <summary>The llama.cpp name for an HF name, or null when it is not in the table.</summary>
    public static string? ToGguf(string hfName) => GgufNameMap.Llama.ToGguf(hfName);

    /// <summary>True for the q and k projections (weights or biases), whose rows RoPE pairs up; takes either naming.</summary>
    public static bool IsRopeProjection(string name, out bool isKey)
    {
        string hf = ToHf(name) ?? name;
        isKey = hf.Contains(".self_attn.k_proj.", StringComparison.Ordinal);
        return isKey || hf.Contains(".self_attn.q_proj.", StringComparison.Ordinal);
    }
}
