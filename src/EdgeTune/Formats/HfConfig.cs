using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeTune.Internal;
using EdgeTune.Formats.Internal;

namespace EdgeTune.Formats;

/// <summary>
/// A decoder-only transformer's hyperparameters as a Hugging Face <c>config.json</c> states them
/// (Llama, Mistral, Qwen2 and relatives). Field names follow HF; unknown keys are ignored.
/// </summary>
/// <remarks>
/// Required: <c>model_type</c>, <c>hidden_size</c>, <c>intermediate_size</c>, <c>num_hidden_layers</c>,
/// <c>num_attention_heads</c>, <c>vocab_size</c>. Defaults (as transformers' LlamaConfig):
/// <c>num_key_value_heads</c> = heads, <c>head_dim</c> = hidden/heads, <c>rms_norm_eps</c> 1e-6,
/// <c>rope_theta</c> 10000, <c>max_position_embeddings</c> 2048, <c>tie_word_embeddings</c> false,
/// <c>hidden_act</c> "silu", <c>attention_bias</c> false except for <c>model_type</c> "qwen2" (bias on q/k/v).
/// </remarks>
public sealed record HfConfig
{
    public required string ModelType { get; init; }
    public IReadOnlyList<string> Architectures { get; init; } = [];
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    /// <summary>Size of one attention head (<c>head_dim</c>, or hidden_size / heads).</summary>
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q/k/v projections (HF <c>attention_bias</c>; true for qwen2).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Bias on o_proj. HF Llama's <c>attention_bias</c> covers o_proj as well; Qwen2 has none there.</summary>
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public int? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c> (an int or a list in config.json; empty when absent).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    /// <summary><c>torch_dtype</c> (or the newer <c>dtype</c>): "float32", "bfloat16", "float16" ...</summary>
    public string? TorchDtype { get; init; }
    public int? SlidingWindow { get; init; }
    /// <summary>Qwen2's <c>use_sliding_window</c>; null when the config does not say.</summary>
    public bool? UseSlidingWindow { get; init; }

    /// <summary>Every top-level field of the config.json this was read from (or that a GGUF file implies), as
    /// JSON, including those this record has no property for: family-specific settings (Gemma 3's
    /// <c>query_pre_attn_scalar</c>, Phi-3's <c>partial_rotary_factor</c> ...) are read from here by the family,
    /// and <see cref="ToJson"/> writes back the ones it does not write itself.</summary>
    public IReadOnlyDictionary<string, JsonElement> Raw { get; init; } = new Dictionary<string, JsonElement>();

    /// <summary>A raw field as a number, or null when absent or null.</summary>
    public double? RawDouble(string field) =>
        Raw.TryGetValue(field, out var e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;

    /// <summary>A raw field as a string, or null when absent or not a string.</summary>
    public string? RawString(string field) =>
        Raw.TryGetValue(field, out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    /// <summary>A raw field as a list of strings, or null when absent or not an array.</summary>
    public IReadOnlyList<string>? RawStringList(string field) =>
        Raw.TryGetValue(field, out var e) && e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : null;

    /// <summary>This config with raw fields set (or removed, when null).</summary>
    public HfConfig WithRaw(params (string Field, object? Value)[] fields)
    {
        var raw = new Dictionary<string, JsonElement>(Raw);
        foreach (var (f, v) in fields)
        {
            if (v is null) { raw.Remove(f); continue; }
            string json = v switch
            {
                string str => JsonSerializer.Serialize(str, EdgeTuneJson.Default.String),
                bool b => b ? "true" : "false",
                double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                float fl => ((double)fl).ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                int i => i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                double[] arr => "[" + string.Join(",", arr.Select(x => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]",
                string[] sa => JsonSerializer.Serialize(sa, EdgeTuneJson.Default.StringArray),
                JsonElement el => el.GetRawText(),
                _ => throw new ArgumentException($"HfConfig.WithRaw: field '{f}' has unsupported value type {v.GetType().Name}"),
            };
            using var doc = JsonDocument.Parse(json);
            raw[f] = doc.RootElement.Clone();
        }
        return this with { Raw = raw };
    }

    /// <summary>Rows of k_proj / v_proj: kv heads × head size.</summary>
    public int KeyValueDim => NumKeyValueHeads * HeadDim;

    /// <summary>Rows of q_proj: heads × head size (equals hidden_size except when head_dim is set otherwise).</summary>
    public int QueryDim => NumAttentionHeads * HeadDim;

    /// <summary>Reads and validates a config.json file.</summary>
    public static HfConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path, Encoding.UTF8); }
        catch (FileNotFoundException) { throw new FileNotFoundException($"config file '{path}' does not exist", path); }
        return Parse(text, path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names the file in errors.</summary>
    public static HfConfig Parse(string json, string source = "config.json")
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new CheckpointFormatException(source, $"not valid JSON: {e.Message}", inner: e); }
        using (doc)
        {
            // A multimodal wrapper (gemma3 = vision + gemma3_text): its text_config is the decoder's config.
            if (HfTextTower.IsWrapper(doc.RootElement)) return Parse(HfTextTower.TextConfigJson(doc.RootElement, source), source);
            var r = new JsonFields(doc.RootElement, source);
            string modelType = r.String("model_type") ?? throw r.Missing("model_type");
            // A config of another architecture (gpt2's n_embd, ...) lacks the decoder fields: say which model_type it is.
            foreach (string field in (ReadOnlySpan<string>)["hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers", "vocab_size"])
                if (r.Int(field) is null)
                    throw new CheckpointFormatException(source,
                        $"required field '{field}' is missing (model_type '{modelType}'; EdgeTune reads decoder configs: llama, mistral, qwen2, qwen3, gemma3_text, phi3)", field);
            int hidden = r.Int("hidden_size") ?? throw r.Missing("hidden_size");
            int heads = r.Int("num_attention_heads") ?? throw r.Missing("num_attention_heads");
            bool qwen2 = modelType is "qwen2";
            bool attnBias = r.Bool("attention_bias") ?? qwen2;
            var cfg = new HfConfig
            {
                ModelType = modelType,
                Architectures = r.StringList("architectures"),
                HiddenSize = hidden,
                IntermediateSize = r.Int("intermediate_size") ?? throw r.Missing("intermediate_size"),
                NumHiddenLayers = r.Int("num_hidden_layers") ?? throw r.Missing("num_hidden_layers"),
                NumAttentionHeads = heads,
                NumKeyValueHeads = r.Int("num_key_value_heads") ?? heads,
                HeadDim = r.Int("head_dim") ?? (heads > 0 ? hidden / heads : 0),
                VocabSize = r.Int("vocab_size") ?? throw r.Missing("vocab_size"),
                RmsNormEps = r.Double("rms_norm_eps") ?? 1e-6,
                RopeTheta = r.Double("rope_theta") ?? 10000.0,
                RopeScaling = r.RopeScaling("rope_scaling"),
                MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 2048,
                TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
                AttentionBias = attnBias,
                OutputBias = !qwen2 && attnBias,
                MlpBias = r.Bool("mlp_bias") ?? false,
                HiddenAct = r.String("hidden_act") ?? "silu",
                BosTokenId = r.Int("bos_token_id"),
                EosTokenIds = r.IntOrIntList("eos_token_id"),
                PadTokenId = r.Int("pad_token_id"),
                TorchDtype = r.String("torch_dtype") ?? r.String("dtype"),
                SlidingWindow = r.Int("sliding_window"),
                UseSlidingWindow = r.Bool("use_sliding_window"),
                Raw = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal),
            };
            cfg.Validate(source);
            return cfg;
        }
    }

    /// <summary>Checks that sizes are positive and consistent; errors name the field and <paramref name="source"/>.</summary>
    public void Validate(string source = "config")
    {
        void Positive(string field, int v)
        {
            if (v <= 0) throw new CheckpointFormatException(source, $"field '{field}' must be positive, got {v}", field);
        }
        Positive("hidden_size", HiddenSize);
        Positive("intermediate_size", IntermediateSize);
        Positive("num_hidden_layers", NumHiddenLayers);
        Positive("num_attention_heads", NumAttentionHeads);
        Positive("num_key_value_heads", NumKeyValueHeads);
        Positive("head_dim", HeadDim);
        Positive("vocab_size", VocabSize);
        Positive("max_position_embeddings", MaxPositionEmbeddings);
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new CheckpointFormatException(source, $"field 'num_key_value_heads' = {NumKeyValueHeads} must divide num_attention_heads = {NumAttentionHeads}", "num_key_value_heads");
        if (HeadDim % 2 != 0)
            throw new CheckpointFormatException(source, $"field 'head_dim' = {HeadDim} must be even for RoPE (hidden_size {HiddenSize} / heads {NumAttentionHeads})", "head_dim");
        if (!(RmsNormEps > 0) || !double.IsFinite(RmsNormEps))
            throw new CheckpointFormatException(source, $"field 'rms_norm_eps' must be a positive number, got {RmsNormEps}", "rms_norm_eps");
        if (!(RopeTheta > 0) || !double.IsFinite(RopeTheta))
            throw new CheckpointFormatException(source, $"field 'rope_theta' must be a positive number, got {RopeTheta}", "rope_theta");
    }

    private static readonly HashSet<string> WrittenFields = new(StringComparer.Ordinal)
    {
        "architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings",
        "tie_word_embeddings", "attention_bias", "mlp_bias", "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id",
        "torch_dtype", "dtype", "sliding_window", "use_sliding_window",
    };

    /// <summary>The config as config.json text with HF field names (what <see cref="Parse"/> reads back).</summary>
    public string ToJson()
    {
        JsonElement ropeScaling;
        if (RopeScaling is not null && Raw.TryGetValue("rope_scaling", out var rawScaling) && rawScaling.ValueKind == JsonValueKind.Object)
            ropeScaling = rawScaling; // as read: keeps fields such as longrope's short/long factors
        else if (RopeScaling is { } rs)
            ropeScaling = JsonSerializer.SerializeToElement(
                new RopeScalingJson(rs.RopeType, rs.Factor, rs.LowFreqFactor, rs.HighFreqFactor, rs.OriginalMaxPositionEmbeddings),
                EdgeTuneJson.Default.RopeScalingJson);
        else ropeScaling = JsonNull;
        JsonElement? eos = EosTokenIds.Count switch
        {
            0 => null,
            1 => EdgeTuneJson.Element(EosTokenIds[0]),
            _ => EdgeTuneJson.Element(EosTokenIds.ToArray()),
        };
        var others = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (field, value) in Raw)
            if (!WrittenFields.Contains(field)) others[field] = value;
        var json = new HfConfigJson
        {
            Architectures = Architectures, ModelType = ModelType, HiddenSize = HiddenSize, IntermediateSize = IntermediateSize,
            NumHiddenLayers = NumHiddenLayers, NumAttentionHeads = NumAttentionHeads, NumKeyValueHeads = NumKeyValueHeads, HeadDim = HeadDim,
            VocabSize = VocabSize, RmsNormEps = RmsNormEps, RopeTheta = RopeTheta, RopeScaling = ropeScaling,
            MaxPositionEmbeddings = MaxPositionEmbeddings, TieWordEmbeddings = TieWordEmbeddings, AttentionBias = AttentionBias,
            MlpBias = MlpBias, HiddenAct = HiddenAct, BosTokenId = BosTokenId, EosTokenId = eos, PadTokenId = PadTokenId,
            TorchDtype = TorchDtype, SlidingWindow = SlidingWindow, UseSlidingWindow = UseSlidingWindow, Others = others,
        };
        return EdgeTuneJson.Write(json, EdgeTuneJson.Default.HfConfigJson, indented: true);
    }

    private static readonly JsonElement JsonNull = JsonDocument.Parse("null").RootElement.Clone();
}

/// <summary>
/// config.json as <see cref="HfConfig.ToJson"/> writes it: the fields HfConfig models, in HF's names (rope_scaling
/// written as null when absent, the optional ids, dtype and sliding-window settings left out when unset), then every
/// other field of the config it was read from, unchanged (<see cref="Others"/>, written after the rest).
/// </summary>
internal sealed class HfConfigJson
{
    public required IReadOnlyList<string> Architectures { get; init; }
    public required string ModelType { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    public int HeadDim { get; init; }
    public int VocabSize { get; init; }
    public double RmsNormEps { get; init; }
    public double RopeTheta { get; init; }
    public JsonElement RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public required string HiddenAct { get; init; }
    public int? BosTokenId { get; init; }
    public JsonElement? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }
    public string? TorchDtype { get; init; }
    public int? SlidingWindow { get; init; }
    public bool? UseSlidingWindow { get; init; }

    /// <summary>The raw fields HfConfig has no member for, written after the others as they were read. Settable, not
    /// init-only: the generated code passes init-only members like constructor arguments, which extension data cannot be.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement> Others { get; set; } = [];
}

/// <summary>rope_scaling built from a <see cref="Formats.RopeScaling"/> (the llama3 factors left out when unset).</summary>
internal sealed record RopeScalingJson(string RopeType, double Factor, double? LowFreqFactor, double? HighFreqFactor, int? OriginalMaxPositionEmbeddings);
