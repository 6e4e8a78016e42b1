namespace EdgeTune.Formats;

/// <summary>
/// How the rows of the query/key projections pair up the two coordinates that RoPE rotates together.
/// </summary>
/// <remarks>
/// The same Llama weights exist in both layouts: Meta's original checkpoints, llama2.c and GGUF
/// Llama files (llama.cpp's converter permutes the HF rows back) rotate adjacent pairs (2i, 2i+1)
/// of each head; Hugging Face checkpoints rotate (i, i + D/2), and so do GGUF files of NEOX-rope
/// architectures (qwen2, phi3, gemma ...), which the converter leaves unpermuted. <see cref="RopePermutation"/> converts q/k
/// weights between the two, so a model written for one layout can load either.
/// </remarks>
public enum RopeLayout
{
    /// <summary>Pairs (v[2i], v[2i+1]) of each head: Meta, llama2.c, GGUF llama (llama.cpp "normal" rope).</summary>
    Interleaved,

    /// <summary>Pairs (v[i], v[i + D/2]) of each head: Hugging Face transformers ("rotate_half"), GGUF qwen2/phi3 (llama.cpp NEOX).</summary>
    HalfSplit,
}
