using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// Bridges Llama-family GGUF files and Hugging Face conventions: the <c>{arch}.*</c> metadata keys
/// that llama.cpp uses ↔ <see cref="HfConfig"/>, and tensors under HF names with q/k rows in either
/// RoPE layout. Architectures handled: llama, mistral, qwen2 (same tensor names and keys).
/// </summary>
public static class GgufLlama
{
    // Architectures that llama.cpp runs with NEOX (half-split) rope; its converter leaves their q/k rows as HF has them.
    private static readonly HashSet<string> HalfSplitArchitectures = new(StringComparer.Ordinal)
    {
        "qwen", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi2", "phi3", "gemma", "gemma2", "gemma3",
        "stablelm", "starcoder2", "gptneox", "falcon",
    };

    /// <summary>
    /// The RoPE layout of q/k rows in a GGUF file of <paramref name="architecture"/>: llama.cpp's
    /// converter permutes Llama (and Mistral, converted as "llama") to interleaved, but keeps the HF
    /// half-split rows of NEOX-rope architectures such as qwen2, phi3 and gemma. Unknown
    /// architectures are assumed interleaved.
    /// </summary>
    public static RopeStyle RopeLayoutOf(string? architecture) =>
        architecture is not null && HalfSplitArchitectures.Contains(architecture) ? RopeStyle.HalfSplit : RopeStyle.Interleaved;

    /// <summary>The HF config equivalent to a GGUF file's <c>{arch}.*</c> metadata.</summary>
    /// <remarks>Vocab size comes from <c>{arch}.vocab_size</c>, else the token list, else token_embd;
    /// the embedding is tied when there is no <c>output.weight</c>.</remarks>
    public static HfConfig ToHfConfig(GgufFile g)
    {
        string arch = g.Architecture ?? throw new CheckpointFormatException(g.Source, "metadata 'general.architecture' is missing");
        int Req(string key) => g.GetInt32OrNull($"{arch}.{key}")
            ?? throw new CheckpointFormatException(g.Source, $"metadata '{arch}.{key}' is missing", $"{arch}.{key}");
        int? Opt(string key) => g.GetInt32OrNull($"{arch}.{key}");
        double? OptD(string key) => g.Metadata.TryGetValue($"{arch}.{key}", out var v) ? v.AsDouble() : null;

        int hidden = Req("embedding_length"), heads = Req("attention.head_count");
        int vocab = Opt("vocab_size")
            ?? (g.Metadata.TryGetValue("tokenizer.ggml.tokens", out var toks) ? toks.ArrayLength : (int?)null)
            ?? (g.Contains("token_embd.weight") ? g.TensorInfos.First(t => t.Name == "token_embd.weight").Shape[0] : (int?)null)
            ?? throw new CheckpointFormatException(g.Source, $"cannot tell the vocabulary size: no '{arch}.vocab_size', token list or token_embd.weight");
        RopeScaling? scaling = null;
        if (g.Metadata.TryGetValue($"{arch}.rope.scaling.type", out var st) && st.AsString() is string type && type != "none")
            scaling = new RopeScaling(type, OptD("rope.scaling.factor") ?? 1.0, OriginalMaxPositionEmbeddings: Opt("rope.scaling.original_context_length"));
        // Ids written as -1 / 0xFFFFFFFF (llama.cpp's "none", e.g. padding_token_id of a llama2.c conversion) read as absent.
        int? Token(string key) => g.GetTokenId($"tokenizer.ggml.{key}");
        int? eos = Token("eos_token_id");
        var cfg = new HfConfig
        {
            ModelType = arch,
            HiddenSize = hidden,
            IntermediateSize = Req("feed_forward_length"),
            NumHiddenLayers = Req("block_count"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = Opt("attention.head_count_kv") ?? heads,
            HeadDim = Opt("attention.key_length") ?? hidden / heads, // rope.dimension_count can be smaller (partial rotary)
            VocabSize = vocab,
            RmsNormEps = OptD("attention.layer_norm_rms_epsilon") ?? 1e-5,
            RopeTheta = OptD("rope.freq_base") ?? 10000.0,
            RopeScaling = scaling,
            MaxPositionEmbeddings = Opt("context_length") ?? 2048,
            TieWordEmbeddings = !g.Contains("output.weight"),
            AttentionBias = g.Contains("blk.0.attn_q.bias"),
            OutputBias = g.Contains("blk.0.attn_output.bias"),
            BosTokenId = Token("bos_token_id"),
            EosTokenIds = eos is { } e ? [e] : [],
            PadTokenId = Token("padding_token_id"),
        };
        cfg.Validate(g.Source);
        return cfg;
    }

    /// <summary>The <c>general.*</c> and <c>{arch}.*</c> metadata llama.cpp expects for <paramref name="cfg"/> (no tokenizer keys).</summary>
    public static List<KeyValuePair<string, GgufValue>> Metadata(HfConfig cfg, string? name = null, string? architecture = null)
    {
        string a = architecture ?? cfg.ModelType;
        var m = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", a),
            new("general.name", name ?? "EdgeTune export"), // not the architecture: llama.cpp reads some names (e.g. "phi3") as hints about the vocabulary
            new($"{a}.context_length", (uint)cfg.MaxPositionEmbeddings),
            new($"{a}.embedding_length", (uint)cfg.HiddenSize),
            new($"{a}.block_count", (uint)cfg.NumHiddenLayers),
            new($"{a}.feed_forward_length", (uint)cfg.IntermediateSize),
            new($"{a}.rope.dimension_count", (uint)cfg.HeadDim),
            new($"{a}.attention.head_count", (uint)cfg.NumAttentionHeads),
            new($"{a}.attention.head_count_kv", (uint)cfg.NumKeyValueHeads),
            new($"{a}.attention.layer_norm_rms_epsilon", (float)cfg.RmsNormEps),
            new($"{a}.rope.freq_base", (float)cfg.RopeTheta),
            new($"{a}.vocab_size", (uint)cfg.VocabSize),
        };
        if (cfg.HeadDim != cfg.HiddenSize / cfg.NumAttentionHeads)
        {
            m.Add(new($"{a}.attention.key_length", (uint)cfg.HeadDim));
            m.Add(new($"{a}.attention.value_length", (uint)cfg.HeadDim));
        }
        if (cfg.RopeScaling is { IsLinear: true } rs)
        {
            m.Add(new($"{a}.rope.scaling.type", "linear"));
            m.Add(new($"{a}.rope.scaling.factor", (float)rs.Factor));
        }
        return m;
    }

    /// <summary>
    /// A tensor of a GGUF file under its HF name, as a new owning tensor; q/k projections are
    /// permuted from the file's layout (<see cref="GgufFile.RopeLayout"/>) into <paramref name="layout"/>.
    /// </summary>
    public static Tensor GetHfTensor(GgufFile g, HfConfig cfg, string hfName, RopeStyle layout, GgufNameMap? names = null)
    {
        string ggufName = (names ?? GgufNameMap.Llama).ToGguf(hfName)
            ?? throw new KeyNotFoundException($"{g.Source}: '{hfName}' has no llama.cpp name");
        var t = g.GetTensor(ggufName);
        if (!GgufTensorNames.IsRopeProjection(hfName, out bool isKey))
        {
            var copy = t.Clone();
            copy.Name = hfName;
            return copy;
        }
        var p = RopePermutation.Convert(t, isKey ? cfg.NumKeyValueHeads : cfg.NumAttentionHeads, g.RopeLayout, layout);
        p.Name = hfName;
        return p;
    }

    /// <summary>
    /// Writes a GGUF file that llama.cpp can load from HF-named tensors whose q/k rows follow
    /// <paramref name="sourceLayout"/>: names mapped to llama.cpp's, q/k permuted to the layout llama.cpp
    /// expects for the architecture (<see cref="RopeLayoutOf"/>: interleaved for llama),
    /// metadata from <paramref name="cfg"/> plus <paramref name="extraMetadata"/> (e.g. tokenizer keys).
    /// Tensors without a llama.cpp name are refused by name.
    /// </summary>
    public static void Write(string path, HfConfig cfg, IEnumerable<KeyValuePair<string, Tensor>> hfTensors, RopeStyle sourceLayout,
        IEnumerable<KeyValuePair<string, GgufValue>>? extraMetadata = null, GgufNameMap? names = null,
        List<KeyValuePair<string, GgufValue>>? metadata = null, IEnumerable<KeyValuePair<string, Tensor>>? extraTensors = null)
    {
        names ??= GgufNameMap.Llama;
        var meta = metadata ?? Metadata(cfg);
        string arch = meta.FirstOrDefault(kv => kv.Key == "general.architecture").Value?.AsString() ?? cfg.ModelType;
        RopeStyle target = RopeLayoutOf(arch);
        var converted = new List<KeyValuePair<string, Tensor>>();
        var owned = new List<Tensor>();
        try
        {
            foreach (var (name, t) in hfTensors)
            {
                string g = names.ToGguf(name)
                    ?? throw new CheckpointFormatException(path, "has no llama.cpp name (see GgufNameMap)", name);
                Tensor w = t;
                if (sourceLayout != target && GgufTensorNames.IsRopeProjection(name, out bool isKey))
                {
                    w = RopePermutation.Convert(t, isKey ? cfg.NumKeyValueHeads : cfg.NumAttentionHeads, sourceLayout, target);
                    owned.Add(w);
                }
                converted.Add(new(g, w));
            }
            if (extraTensors is not null) converted.AddRange(extraTensors);
            meta = [.. meta];
            if (extraMetadata is not null) meta.AddRange(extraMetadata);
            GgufWriter.Write(path, meta, converted);
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
        }
    }
}
