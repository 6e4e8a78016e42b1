using EdgeTune.Autograd;

namespace EdgeTune.Nn;

/// <summary>
/// A linear map y = x·Wᵀ (+ b) that a model calls without knowing what is behind it: a plain
/// <see cref="Linear"/>, a quantized layer, or an adapter (LoRA) wrapping either. Models are
/// composed by replacing one ILinear with another; <see cref="Name"/> is the HF weight name
/// without its ".weight" suffix (e.g. "model.layers.0.self_attn.q_proj").
/// </summary>
public interface ILinear : IModule
{
    string Name { get; }
    int InFeatures { get; }
    int OutFeatures { get; }

    /// <summary>Inference: y[N, out] (+)= x[N, in]·Wᵀ (+ b), no tape.</summary>
    void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false);

    /// <summary>Training: x (…, in) → (…, out) recorded on <paramref name="tape"/>.</summary>
    Variable Forward(Tape tape, Variable x);

}
