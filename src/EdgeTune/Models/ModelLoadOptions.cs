namespace EdgeTune.Models;

/// <summary>How a checkpoint becomes a model.</summary>
/// <param name="Trainable">Copy every tensor into owned, writable F32 memory and mark it trainable (full
/// fine-tuning). Otherwise weights stay as stored (memory-mapped where possible) and frozen, which is what
/// inference and LoRA need.</param>
/// <param name="KeepQuantized">When not <paramref name="Trainable"/>: decoder projections stored block-quantized
/// (GGUF Q8_0/Q4_0, or EdgeTune's quantized safetensors <c>.weight.q</c> tensors) stay quantized as
/// <see cref="EdgeTune.Nn.Quantized.QuantizedLinear"/> layers instead of being widened to F32. Embedding and
/// LM head are always widened.</param>
public sealed record ModelLoadOptions(bool Trainable = false, bool KeepQuantized = true)
{
    public static ModelLoadOptions Inference { get; } = new();
    public static ModelLoadOptions FullFineTuning { get; } = new(Trainable: true);
}
