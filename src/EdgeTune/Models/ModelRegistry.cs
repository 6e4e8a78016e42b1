using EdgeTune.Formats;
using EdgeTune.Models.Llama;

namespace EdgeTune.Models;

/// <summary>
/// Model families keyed by <c>config.json</c>'s <c>model_type</c> (and GGUF's <c>general.architecture</c>).
/// A new family is one folder under Models/ (config reading, the block, the name map) plus one line here.
/// </summary>
public static class ModelRegistry
{
    private static readonly DecoderFamily[] s_families = [LlamaFamily.Instance, Qwen3.Qwen3Family.Instance, Gemma3.Gemma3Family.Instance, Phi3.Phi3Family.Instance];

    private static readonly Dictionary<string, DecoderFamily> s_byType =
        s_families.SelectMany(f => f.ModelTypes.Select(t => (t, f))).ToDictionary(x => x.t, x => x.f, StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyCollection<string> SupportedModelTypes => s_byType.Keys;

    public static IReadOnlyList<DecoderFamily> Families => s_families;

    /// <summary>The family of <paramref name="modelType"/>; the error names the supported types.</summary>
    public static DecoderFamily Family(string modelType, string? source = null) =>
        TryFamily(modelType) ?? throw new NotSupportedException(
            $"{(source is null ? "" : source + ": ")}model_type '{modelType}' is not supported; supported: {string.Join(", ", s_byType.Keys.Order())}");

    public static DecoderFamily? TryFamily(string modelType) => s_byType.GetValueOrDefault(modelType);

    /// <summary>Builds the model for <paramref name="config"/>'s model_type over an opened checkpoint (which it then owns).</summary>
    public static ICausalLM Create(ICheckpointReader reader, HfConfig config, ModelLoadOptions? options = null) =>
        DecoderModel.Load(reader, config, options ?? ModelLoadOptions.Inference);
}
