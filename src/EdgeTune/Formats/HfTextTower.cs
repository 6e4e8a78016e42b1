using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeTune.Formats;

/// <summary>
/// Multimodal Hugging Face checkpoints whose language model is a decoder EdgeTune runs (Gemma 3 4B/12B/27B are
/// <c>gemma3</c> = SigLIP vision tower + <c>gemma3_text</c>): the config's <c>text_config</c> becomes the model's config
/// and the text tower's tensors are read under their plain names. The vision tower is not loaded.
/// </summary>
/// <remarks>
/// transformers writes a sub-config as its differences from the sub-config class's defaults, so a text_config often
/// lacks head counts or the vocabulary size; those defaults (facts of the transformers config classes) are filled in here.
/// </remarks>
public static class HfTextTower
{
    /// <summary>Per wrapper model_type: the text tower's model_type and its config class defaults.</summary>
    private static readonly Dictionary<string, (string TextModelType, (string Field, JsonNode? Value)[] Defaults)> Known = new(StringComparer.Ordinal)
    {
        // transformers Gemma3TextConfig's defaults.
        ["gemma3"] = ("gemma3_text",
        [
            ("vocab_size", 262208), ("hidden_size", 2304), ("intermediate_size", 9216), ("num_hidden_layers", 26),
            ("num_attention_heads", 8), ("num_key_value_heads", 4), ("head_dim", 256), ("hidden_activation", "gelu_pytorch_tanh"),
            ("max_position_embeddings", 131072), ("rms_norm_eps", 1e-6), ("pad_token_id", 0), ("eos_token_id", 1), ("bos_token_id", 2),
            ("tie_word_embeddings", true), ("rope_theta", 1000000.0), ("attention_bias", false), ("query_pre_attn_scalar", 256),
            ("sliding_window", 4096), ("rope_local_base_freq", 10000.0), ("sliding_window_pattern", 6),
        ]),
    };

    /// <summary>True when <paramref name="root"/> is a wrapper config holding a <c>text_config</c> and no decoder fields of its own.</summary>
    public static bool IsWrapper(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text_config", out var t) && t.ValueKind == JsonValueKind.Object
        && !root.TryGetProperty("hidden_size", out _);

    /// <summary>The text tower's config JSON: the wrapper's defaults, then the fields text_config sets; the wrapper's
    /// dtype and token ids where the text config has none.</summary>
    /// <exception cref="CheckpointFormatException">The wrapper is not one EdgeTune knows and its text_config is incomplete.</exception>
    public static string TextConfigJson(JsonElement root, string source)
    {
        string wrapper = root.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "?";
        var text = JsonNode.Parse(root.GetProperty("text_config").GetRawText())!.AsObject();
        var merged = new JsonObject();
        if (Known.TryGetValue(wrapper, out var known))
        {
            foreach (var (field, value) in known.Defaults) merged[field] = value?.DeepClone();
            merged["model_type"] = known.TextModelType;
        }
        else if (!text.ContainsKey("model_type"))
            throw new CheckpointFormatException(source, $"model_type '{wrapper}' is a multimodal config whose text_config names no model_type; EdgeTune reads the text tower of: {string.Join(", ", Known.Keys)}", "text_config");
        foreach (var (field, value) in text) merged[field] = value?.DeepClone();
        foreach (string field in (ReadOnlySpan<string>)["torch_dtype", "dtype", "eos_token_id", "bos_token_id", "pad_token_id"])
            if (!text.ContainsKey(field) && root.TryGetProperty(field, out var v))
                merged[field] = JsonNode.Parse(v.GetRawText());
        return merged.ToJsonString();
    }

    /// <summary>True when the checkpoint stores a multimodal model's text tower under a prefix (see <see cref="PlainName"/>).</summary>
    public static bool HasPrefixedTextTower(ICheckpointReader reader) =>
        !reader.Contains("model.embed_tokens.weight")
        && reader.Tensors.Any(t => PlainName(t.Name) is { } plain && plain != t.Name);

    /// <summary>The checkpoint name of a text tower tensor as EdgeTune names it (<c>model.layers.0...</c>, <c>lm_head.weight</c>),
    /// or null for tensors of the other towers. transformers before 4.52 saved <c>language_model.model.*</c> and
    /// <c>language_model.lm_head.*</c>; later versions save <c>model.language_model.*</c> and <c>lm_head.*</c>.</summary>
    public static string? PlainName(string stored)
    {
        if (stored.StartsWith("language_model.", StringComparison.Ordinal)) return stored["language_model.".Length..];
        if (stored.StartsWith("model.language_model.", StringComparison.Ordinal)) return "model." + stored["model.language_model.".Length..];
        if (stored.StartsWith("lm_head.", StringComparison.Ordinal)) return stored;
        return null;
    }
}
