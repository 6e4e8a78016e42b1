using EdgeTune.Formats;
using EdgeTune.Models.Llama;

namespace EdgeTune.Models;

/// <summary>
/// Model families keyed by <c>config.json</c>'s <c>model_type</c>. A new family is one new folder
/// under Models/ plus one <see cref="Register"/> line here.
/// </summary>
public static class ModelRegistry
{
    private static readonly Dictionary<string, Func<ICheckpointReader, HfConfig, ModelLoadOptions, ICausalLM>> s_families = new(StringComparer.OrdinalIgnoreCase)
    {
        // Llama 1/2/3, SmolLM/SmolLM2, TinyLlama and llama2.c checkpoints all say "llama".
        ["llama"] = LlamaModel.Load,
        ["mistral"] = LlamaModel.Load,
        ["qwen2"] = LlamaModel.Load,
    };

    public static IReadOnlyCollection<string> SupportedModelTypes => s_families.Keys;

    public static void Register(string modelType, Func<ICheckpointReader, HfConfig, ModelLoadOptions, ICausalLM> factory) => s_families[modelType] = factory;

    /// <summary>Builds the model for <paramref name="config"/>'s model_type over an opened checkpoint (which it then owns).</summary>
    public static ICausalLM Create(ICheckpointReader reader, HfConfig config, ModelLoadOptions? options = null)
    {
        if (!s_families.TryGetValue(config.ModelType, out var factory))
            throw new NotSupportedException(
                $"{reader.Source}: model_type '{config.ModelType}' is not supported; supported: {string.Join(", ", s_families.Keys.Order())}");
        return factory(reader, config, options ?? ModelLoadOptions.Inference);
    }
}
