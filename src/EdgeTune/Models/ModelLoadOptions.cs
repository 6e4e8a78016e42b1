namespace EdgeTune.Models;

/// <summary>How a checkpoint becomes a model.</summary>
/// <param name="Trainable">Copy every tensor into owned, writable F32 memory and mark it trainable (full
/// fine-tuning). Otherwise weights stay as stored (memory-mapped where possible) and frozen, which is what
/// inference and LoRA need.</param>
public sealed record ModelLoadOptions(bool Trainable = false)
{
    public static ModelLoadOptions Inference { get; } = new();
    public static ModelLoadOptions FullFineTuning { get; } = new(Trainable: true);
}
