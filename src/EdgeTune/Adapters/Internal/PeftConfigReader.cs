using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Nn;

namespace EdgeTune.Adapters.Internal;

/// <summary>What an <c>adapter_config.json</c> asks of a model: the LoRA settings with the targets resolved to the
/// model's layer names, and the HF modules whose full weights the adapter carries (<c>modules_to_save</c>).</summary>
internal sealed record PeftAdapterConfig(LoraConfig Lora, IReadOnlyList<string> ModulesToSave);

/// <summary>
/// Reads PEFT's <c>adapter_config.json</c> (any recent PEFT version) and resolves it against a model the way PEFT does:
/// <c>target_modules</c> as a list (a layer is selected when its name equals an entry or ends with "." + entry), a regex
/// string (full match) or "all-linear" (every block projection, not the head); <c>exclude_modules</c> likewise;
/// <c>layers_to_transform</c> (int or list) with <c>layers_pattern</c> for list targets; <c>rank_pattern</c> and
/// <c>alpha_pattern</c>. Fields that change what the weights mean and that EdgeTune cannot honour are refused by
/// name; unknown fields are ignored.
/// </summary>
internal static class PeftConfigReader
{
    /// <summary>PEFT's defaults for a config without target_modules (its per-architecture table).</summary>
    private static IReadOnlyList<string> DefaultTargets(DecoderModel model) =>
        model.Config.ModelType == "phi3" ? ["qkv_proj"] : ["q_proj", "v_proj"];

    /// <summary>Modules whose full weights can be replaced (modules_to_save).</summary>
    private static readonly string[] SavableModules = [DecoderModel.Names.EmbedModule, "lm_head"];

    /// <param name="text">The config's text when already read (e.g. decrypted); null: read from <paramref name="path"/>.</param>
    public static PeftAdapterConfig Read(string path, DecoderModel model, string? text = null)
    {
        if (text is null && !File.Exists(path)) throw new FileNotFoundException($"PEFT adapter: '{path}' does not exist", path);
        JsonElement root;
        try { root = JsonDocument.Parse(text ?? File.ReadAllText(path)).RootElement.Clone(); }
        catch (JsonException e) { throw new CheckpointFormatException(path, $"invalid JSON: {e.Message}", null, e); }
        if (root.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException(path, $"the config must be a JSON object, not {root.ValueKind}");
        var f = new Fields(root, path);

        string peftType = f.Str("peft_type") ?? throw f.Error("peft_type", "is missing (LORA expected)");
        if (peftType != "LORA") throw f.Error("peft_type", $"is '{peftType}'; only LORA adapters are supported");
        if (f.Str("task_type") is { } task && task != "CAUSAL_LM")
            throw f.Error("task_type", $"is '{task}'; only CAUSAL_LM adapters (base_model.model.model.layers.* names) are supported");
        RefuseUnsupported(f);

        int r = f.Num("r") is double rv && rv == Math.Floor(rv) && rv is > 0 and <= int.MaxValue ? (int)rv : throw f.Error("r", "must be a positive integer");
        double alpha = f.Num("lora_alpha") ?? throw f.Error("lora_alpha", "is missing");
        double dropout = f.Num("lora_dropout") ?? 0;
        if (!(dropout >= 0 && dropout < 1)) throw f.Error("lora_dropout", $"must lie in [0, 1), got {dropout}");
        bool rs = f.Bool("use_rslora"), dora = f.Bool("use_dora");
        LoraInit init = ReadInit(f);
        var rankPattern = f.Pattern("rank_pattern", v => v == Math.Floor(v) && v is > 0 and <= int.MaxValue ? (int)v : throw f.Error("rank_pattern", $"ranks must be positive integers, got {v}"));
        var alphaPattern = f.Pattern("alpha_pattern", v => v);

        var targets = ResolveTargets(f, model);
        var save = ResolveModulesToSave(f, model);
        var lora = new LoraConfig
        {
            Rank = r, Alpha = alpha, Dropout = dropout, UseRsLora = rs, UseDora = dora, Init = init, TargetModules = targets,
            RankPattern = rankPattern, AlphaPattern = alphaPattern,
        };
        try { lora.Validate(); }
        catch (ArgumentException e) { throw new CheckpointFormatException(path, e.Message, null, e); }
        return new PeftAdapterConfig(lora, save);
    }

    private static void RefuseUnsupported(Fields f)
    {
        string? bias = f.Str("bias");
        if (bias is not null && bias != "none") throw f.Error("bias", $"is '{bias}'; only \"none\" is supported (trained bias vectors are not applied)");
        if (f.Bool("fan_in_fan_out")) throw f.Error("fan_in_fan_out", "is true (GPT-2 style Conv1D weights); these models store [out, in] weights, so it must be false");
        if (f.Bool("lora_bias")) throw f.Error("lora_bias", "is true: a bias on lora_B is not supported");
        if (f.Bool("use_qalora")) throw f.Error("use_qalora", "is true: QA-LoRA (pooled inputs for quantized bases) is not supported");
        foreach (string name in new[] { "layer_replication", "megatron_config", "target_parameters", "trainable_token_indices", "alora_invocation_tokens", "arrow_config" })
            if (f.IsSet(name)) throw f.Error(name, "is set; this PEFT feature is not supported");
        if (f.Has("loftq_config", out var loftq) && loftq.ValueKind == JsonValueKind.Object && loftq.EnumerateObject().Any())
            throw f.Error("loftq_config", "is set: LoftQ adapters belong to a quantized base whose weights they changed; not supported");
    }

    private static LoraInit ReadInit(Fields f)
    {
        if (!f.Has("init_lora_weights", out var v) || v.ValueKind is JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null) return LoraInit.KaimingUniform;
        if (v.ValueKind != JsonValueKind.String) throw f.Error("init_lora_weights", $"must be a boolean or a string, not {v.ValueKind}");
        string s = v.GetString()!;
        return s.ToLowerInvariant() switch
        {
            "true" or "false" or "eva" or "orthogonal" => LoraInit.KaimingUniform, // only A's start differs; trained weights stand alone
            "gaussian" => LoraInit.Gaussian,
            _ when s.StartsWith("pissa", StringComparison.OrdinalIgnoreCase) || s is "olora" or "corda" or "loftq" =>
                throw f.Error("init_lora_weights", $"is '{s}': this initialisation also rewrites the base weights, so the adapter only works with them; " +
                    "convert it to a plain LoRA first (PEFT: save_pretrained(..., path_initial_model_for_weight_conversion=...))"),
            _ => throw f.Error("init_lora_weights", $"'{s}' is not a known initialisation"),
        };
    }

    private static List<string> ResolveTargets(Fields f, DecoderModel model)
    {
        var exclude = Selector(f, "exclude_modules");
        bool hasLayers = f.Has("layers_to_transform", out var lt) && lt.ValueKind != JsonValueKind.Null
            && !(lt.ValueKind == JsonValueKind.Array && lt.GetArrayLength() == 0);
        HashSet<int>? layerSet = null;
        if (hasLayers)
        {
            if (lt.ValueKind == JsonValueKind.Number && lt.TryGetInt32(out int one)) layerSet = [one];
            else if (lt.ValueKind == JsonValueKind.Array && lt.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _)))
                layerSet = lt.EnumerateArray().Select(e => e.GetInt32()).ToHashSet();
            else throw f.Error("layers_to_transform", "must be an integer or a list of integers");
        }
        var layerPatterns = f.StringOrList("layers_pattern");

        Func<string, bool> isTarget;
        bool listMode = false, allLinear = false;
        HashSet<string> listed = [];
        if (!f.IsSet("target_modules"))
        {
            listed = DefaultTargets(model).ToHashSet();
            listMode = true;
            isTarget = n => EndsWithAny(n, listed);
        }
        else if (f.Has("target_modules", out var tm) && tm.ValueKind == JsonValueKind.String)
        {
            string text = tm.GetString()!;
            if (layerSet is not null) throw f.Error("layers_to_transform", "cannot be used when target_modules is a string (PEFT refuses the combination too)");
            allLinear = text.Equals("all-linear", StringComparison.OrdinalIgnoreCase);
            isTarget = allLinear ? _ => true : FullMatch(f, "target_modules", text).IsMatch;
        }
        else
        {
            listed = (f.StringOrList("target_modules") ?? throw f.Error("target_modules", "must be a list of names, a regex string or \"all-linear\"")).ToHashSet();
            listMode = true;
            isTarget = n => EndsWithAny(n, listed);
        }

        // LoRA on the embedding or head (lora_embedding_A/B) is not supported: refuse rather than silently drop it.
        // ("all-linear" leaves the head out, as in PEFT, and the embedding is no linear layer.)
        if (!allLinear)
            foreach (string m in SavableModules)
                if (!exclude(m) && isTarget(m))
                    throw f.Error("target_modules", $"selects '{m}': LoRA on the embedding or output head is not supported (list it in modules_to_save to replace it whole)");

        var targets = new List<string>();
        foreach (var (path, layer) in model.Projections())
        {
            string name = layer.Name;
            if (exclude(name) || !isTarget(name)) continue;
            // As PEFT: layers_to_transform applies to list entries matched as suffixes, not to exact full names.
            if (listMode && layerSet is not null && !listed.Contains(name))
            {
                int? index = PeftLayerIndex(f, name, layerPatterns);
                if (index is not int li || !layerSet.Contains(li)) continue;
            }
            targets.Add(name);
        }
        if (targets.Count == 0)
            throw f.Error("target_modules", $"selects no projection of the model (names look like '{model.Projections().First().Layer.Name}')" +
                (layerSet is not null ? $" in layers_to_transform [{string.Join(", ", layerSet.Order())}]" : ""));
        return targets;
    }

    private static bool EndsWithAny(string name, HashSet<string> keys) =>
        keys.Contains(name) || keys.Any(k => name.EndsWith("." + k, StringComparison.Ordinal));

    /// <summary>A selector for <paramref name="field"/> (exclude_modules): a regex string (full match) or a list (equal or
    /// "."-suffix); null or absent selects nothing.</summary>
    private static Func<string, bool> Selector(Fields f, string field)
    {
        if (!f.Has(field, out var v) || v.ValueKind == JsonValueKind.Null) return _ => false;
        if (v.ValueKind == JsonValueKind.String) return FullMatch(f, field, v.GetString()!).IsMatch;
        var keys = (f.StringOrList(field) ?? throw f.Error(field, "must be a list of names or a regex string")).ToHashSet();
        return n => EndsWithAny(n, keys);
    }

    private static Regex FullMatch(Fields f, string field, string pattern)
    {
        try { return new Regex("^(?:" + pattern + ")\\z", RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw f.Error(field, $"'{pattern}' is not a regular expression .NET can read: {e.Message}"); }
    }

    /// <summary>The decoder layer index PEFT reads from a module name: the number after <c>layers_pattern</c> (any of
    /// them), or after the second-to-last dotted segment before a number when no pattern is given.</summary>
    private static int? PeftLayerIndex(Fields f, string name, IReadOnlyList<string>? patterns)
    {
        IEnumerable<string> res = patterns is { Count: > 0 } ? patterns.Select(p => "^.*\\.(?:" + p + ")\\.(\\d+)\\.") : ["^.*\\.[^.]*\\.(\\d+)\\."];
        foreach (string re in res)
        {
            Match m;
            try { m = Regex.Match(name, re, RegexOptions.CultureInvariant); }
            catch (ArgumentException e) { throw f.Error("layers_pattern", $"is not a regular expression .NET can read: {e.Message}"); }
            if (m.Success) return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        return null;
    }

    private static List<string> ResolveModulesToSave(Fields f, DecoderModel model)
    {
        var keys = f.StringOrList("modules_to_save");
        if (keys is null)
        {
            if (f.IsSet("modules_to_save")) throw f.Error("modules_to_save", "must be a list of module names");
            return [];
        }
        var result = new List<string>();
        foreach (string k in keys)
        {
            var hits = SavableModules.Where(m => m == k || m.EndsWith("." + k, StringComparison.Ordinal)).ToList();
            if (hits.Count == 0)
                throw f.Error("modules_to_save", $"lists '{k}'; only the embedding (embed_tokens) and the output head (lm_head) can be replaced whole");
            foreach (string h in hits) if (!result.Contains(h)) result.Add(h);
        }
        if (model.TiedHead && result.Count == 1)
            throw f.Error("modules_to_save", $"replaces only '{result[0]}' of a model whose head is tied to its embedding (tie_word_embeddings): " +
                "PEFT unties them, which this model cannot represent; save both embed_tokens and lm_head");
        return result;
    }

    /// <summary>Typed access to the config's fields; errors name the file and the field.</summary>
    private sealed class Fields(JsonElement root, string path)
    {
        public CheckpointFormatException Error(string field, string message) => new(path, message, field);

        public bool Has(string key, out JsonElement value) => root.TryGetProperty(key, out value);

        /// <summary>Present with a value other than null, false, "" or an empty list/object.</summary>
        public bool IsSet(string key) => root.TryGetProperty(key, out var v) && v.ValueKind switch
        {
            JsonValueKind.Null or JsonValueKind.False or JsonValueKind.Undefined => false,
            JsonValueKind.String => v.GetString()!.Length > 0,
            JsonValueKind.Array => v.GetArrayLength() > 0,
            JsonValueKind.Object => v.EnumerateObject().Any(),
            _ => true,
        };

        public string? Str(string key) =>
            !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Error(key, $"must be a string, not {v.ValueKind}");

        public double? Num(string key) =>
            !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw Error(key, $"must be a number, not {v.ValueKind}");

        public bool Bool(string key) =>
            root.TryGetProperty(key, out var v) && v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False or JsonValueKind.Null => false,
                _ => throw Error(key, $"must be true or false, not {v.ValueKind}"),
            };

        /// <summary>A string or a list of strings as a list; null when absent or null.</summary>
        public IReadOnlyList<string>? StringOrList(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
            if (v.ValueKind != JsonValueKind.Array) return null;
            var list = new List<string>();
            foreach (var e in v.EnumerateArray())
                list.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Error(key, $"entries must be strings, found {e.ValueKind}"));
            return list;
        }

        /// <summary>A {key: number} object in file order (PEFT tries the keys in that order); null when absent, null or empty.</summary>
        public Dictionary<string, T>? Pattern<T>(string key, Func<double, T> convert)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind != JsonValueKind.Object) throw Error(key, $"must be an object of module name → number, not {v.ValueKind}");
            var d = new Dictionary<string, T>(StringComparer.Ordinal);
            foreach (var p in v.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number) throw Error(key, $"entry '{p.Name}' must be a number, not {p.Value.ValueKind}");
                if (!d.TryAdd(p.Name, convert(p.Value.GetDouble()))) throw Error(key, $"lists '{p.Name}' twice");
                try { _ = new Regex("(?:" + p.Name + ")", RegexOptions.CultureInvariant); }
                catch (ArgumentException e) { throw Error(key, $"key '{p.Name}' is not a regular expression .NET can read: {e.Message}"); }
            }
            return d.Count == 0 ? null : d;
        }
    }
}
