using System.Text.Json;
using System.Text.RegularExpressions;
using EdgeTune.Adapters.Internal;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// Hugging Face PEFT adapter folders: <c>adapter_config.json</c> + <c>adapter_model.safetensors</c> with PEFT
/// tensor names (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>, <c>.lora_B.weight</c>,
/// DoRA <c>.lora_magnitude_vector</c>), q/k rows always in HF's half-split layout.
/// </summary>
public static class AdapterFiles
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>
    /// Writes the adapter into <paramref name="dir"/> (assembled in a sibling temporary folder and moved into
    /// place, replacing an existing folder). target_modules lists the short names adapted; layers_to_transform
    /// is written when not every decoder layer is adapted. Tensors are F32.
    /// </summary>
    public static void Save(LoraAdapter adapter, string dir, string? baseModelNameOrPath = null)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentException.ThrowIfNullOrEmpty(dir);
        var model = adapter.Model;
        var owned = new List<Tensor>();
        try
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var m in adapter.Modules)
            {
                tensors.Add(new(m.A.Name, F32(m.A.Value, owned)));
                tensors.Add(new(m.B.Name, ToHf(model, m.LayerName, F32(m.B.Value, owned), owned)));
                if (m.Magnitude is { } g) tensors.Add(new(g.Name, ToHf(model, m.LayerName, F32(g.Value, owned), owned)));
            }
            string json = ConfigJson(adapter, baseModelNameOrPath);
            FolderWriter.Write(dir, tmp =>
            {
                File.WriteAllText(Path.Combine(tmp, ConfigFile), json);
                SafeTensorsWriter.Write(Path.Combine(tmp, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            });
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    private static Tensor F32(Tensor t, List<Tensor> owned)
    {
        if (t.DType == DType.F32) return t;
        var c = t.To(DType.F32);
        owned.Add(c);
        return c;
    }

    private static Tensor ToHf(DecoderModel model, string layer, Tensor t, List<Tensor> owned)
    {
        var c = PeftLayout.Convert(model, layer, t, model.RopeStyle, RopeStyle.HalfSplit);
        if (c is null) return t;
        owned.Add(c);
        return c;
    }

    private static string ConfigJson(LoraAdapter adapter, string? baseModel)
    {
        var cfg = adapter.Config;
        var shorts = new List<string>();
        var layers = new SortedSet<int>();
        foreach (var m in adapter.Modules)
        {
            int li = ModuleTree.LayerIndex(m.LayerName);
            string s = m.LayerName[(m.LayerName.LastIndexOf('.') + 1)..];
            if (!shorts.Contains(s)) shorts.Add(s);
            if (li >= 0) layers.Add(li);
        }
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("peft_type", "LORA");
            w.WriteString("task_type", "CAUSAL_LM");
            if (baseModel is null) w.WriteNull("base_model_name_or_path"); else w.WriteString("base_model_name_or_path", baseModel);
            w.WriteNumber("r", cfg.Rank);
            w.WriteNumber("lora_alpha", cfg.Alpha);
            w.WriteNumber("lora_dropout", cfg.Dropout);
            w.WriteStartArray("target_modules");
            foreach (string s in shorts) w.WriteStringValue(s);
            w.WriteEndArray();
            if (layers.Count != adapter.Model.Layers.Count)
            {
                w.WriteStartArray("layers_to_transform");
                foreach (int l in layers) w.WriteNumberValue(l);
                w.WriteEndArray();
            }
            else w.WriteNull("layers_to_transform");
            w.WriteBoolean("use_rslora", cfg.UseRsLora);
            w.WriteBoolean("use_dora", cfg.UseDora);
            w.WriteString("bias", "none");
            w.WriteBoolean("fan_in_fan_out", false);
            w.WriteString("init_lora_weights", cfg.Init == LoraInit.Gaussian ? "gaussian" : "true");
            w.WriteBoolean("inference_mode", true);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>Reads <c>adapter_config.json</c> into a <see cref="LoraConfig"/> whose TargetModules are the full names
    /// of the model's layers it selects (PEFT's short names, regex string and layers_to_transform resolved).</summary>
    public static LoraConfig ReadConfig(string dir, DecoderModel model)
    {
        string path = Path.Combine(dir, ConfigFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"PEFT adapter: '{path}' does not exist", path);
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone(); }
        catch (JsonException e) { throw new CheckpointFormatException(path, $"invalid JSON: {e.Message}", null, e); }
        string peftType = Str(root, path, "peft_type") ?? throw new CheckpointFormatException(path, "field 'peft_type' is missing", "peft_type");
        if (peftType != "LORA") throw new CheckpointFormatException(path, $"peft_type is '{peftType}'; only LORA adapters are supported", "peft_type");
        foreach (string pattern in new[] { "rank_pattern", "alpha_pattern" })
            if (root.TryGetProperty(pattern, out var p) && p.ValueKind == JsonValueKind.Object && p.EnumerateObject().Any())
                throw new CheckpointFormatException(path, "per-module ranks/alphas are not supported", pattern);
        string? bias = Str(root, path, "bias");
        if (bias is not null && bias != "none") throw new CheckpointFormatException(path, $"bias '{bias}' is not supported (only \"none\")", "bias");
        if (root.TryGetProperty("fan_in_fan_out", out var fifo) && fifo.ValueKind == JsonValueKind.True)
            throw new CheckpointFormatException(path, "fan_in_fan_out adapters (GPT-2 Conv1D) are not supported", "fan_in_fan_out");

        int r = Num(root, path, "r") is double rv && rv == Math.Floor(rv) && rv > 0 ? (int)rv : throw new CheckpointFormatException(path, "field 'r' must be a positive integer", "r");
        double alpha = Num(root, path, "lora_alpha") ?? throw new CheckpointFormatException(path, "field 'lora_alpha' is missing", "lora_alpha");
        double dropout = Num(root, path, "lora_dropout") ?? 0;
        bool rs = Bool(root, "use_rslora"), dora = Bool(root, "use_dora");

        HashSet<int>? layerSet = null;
        if (root.TryGetProperty("layers_to_transform", out var lt))
        {
            if (lt.ValueKind == JsonValueKind.Number) layerSet = [lt.GetInt32()];
            else if (lt.ValueKind == JsonValueKind.Array) layerSet = lt.EnumerateArray().Select(e => e.GetInt32()).ToHashSet();
        }
        Func<string, bool> match;
        if (!root.TryGetProperty("target_modules", out var tm)) throw new CheckpointFormatException(path, "field 'target_modules' is missing", "target_modules");
        if (tm.ValueKind == JsonValueKind.String)
        {
            var re = new Regex("^(?:" + tm.GetString() + ")$", RegexOptions.CultureInvariant);
            match = re.IsMatch;
        }
        else if (tm.ValueKind == JsonValueKind.Array)
        {
            var names = tm.EnumerateArray().Select(e => e.GetString() ?? "").ToHashSet();
            match = n => names.Contains(n[(n.LastIndexOf('.') + 1)..]) || names.Contains(n);
        }
        else throw new CheckpointFormatException(path, "field 'target_modules' must be a list of names or a regex string", "target_modules");

        var targets = new List<string>();
        foreach (var (p, layer) in model.Projections())
        {
            string name = layer.Name;
            if (match(name) && (layerSet is null || layerSet.Contains(ModuleTree.LayerIndex(p)))) targets.Add(name);
        }
        if (targets.Count == 0)
            throw new CheckpointFormatException(path, "target_modules selects no projection of the model", "target_modules");
        return new LoraConfig { Rank = r, Alpha = alpha, Dropout = dropout, UseRsLora = rs, UseDora = dora, TargetModules = targets };
    }

    /// <summary>
    /// Applies the adapter saved in <paramref name="dir"/> to <paramref name="model"/> under <paramref name="adapterName"/>
    /// (base frozen). Every tensor the config implies must be present with its exact shape, and no other tensor may
    /// be: errors name the file and the tensors. q/k lora_B rows are permuted when the model runs interleaved RoPE.
    /// On error the model is left as it was.
    /// </summary>
    public static LoraAdapter Load(string dir, DecoderModel model, string adapterName = "default")
    {
        ArgumentNullException.ThrowIfNull(model);
        var config = ReadConfig(dir, model);
        string path = Path.Combine(dir, WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"PEFT adapter: '{path}' does not exist", path);
        using var file = SafeTensorsFile.Open(path);
        var adapter = LoraInjector.Apply(model, config, adapterName);
        try
        {
            var expected = adapter.Parameters.Select(p => p.Name).ToHashSet();
            var missing = expected.Where(n => !file.Contains(n)).ToList();
            if (missing.Count > 0)
                throw new CheckpointFormatException(path, $"{missing.Count} adapter tensor(s) missing: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", …" : "")}", missing[0]);
            var extra = file.Tensors.Select(t => t.Name).Where(n => !expected.Contains(n)).ToList();
            if (extra.Count > 0)
                throw new CheckpointFormatException(path, $"{extra.Count} tensor(s) the adapter config does not account for: {string.Join(", ", extra.Take(8))}{(extra.Count > 8 ? ", …" : "")}", extra[0]);
            foreach (var m in adapter.Modules)
            {
                Copy(file, path, m.A, model, null);
                Copy(file, path, m.B, model, m.LayerName);
                if (m.Magnitude is { } g) Copy(file, path, g, model, m.LayerName);
            }
            return adapter;
        }
        catch
        {
            adapter.Remove();
            throw;
        }
    }

    private static void Copy(SafeTensorsFile file, string path, Autograd.Parameter p, DecoderModel model, string? ropeLayer)
    {
        using var t = file.GetTensor(p.Name);
        if (!t.Shape.SequenceEqual(p.Value.Shape))
            throw new CheckpointFormatException(path, $"shape {t.ShapeString} differs from the {p.Value.ShapeString} the config and model imply", p.Name);
        if (t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            throw new CheckpointFormatException(path, $"dtype {t.DType} is not a float type", p.Name);
        using var wide = t.To(p.Value.DType);
        using var permuted = ropeLayer is null ? null : PeftLayout.Convert(model, ropeLayer, wide, RopeStyle.HalfSplit, model.RopeStyle);
        Autograd.Internal.TensorMath.CopyBytes(permuted ?? wide, p.Value);
    }

    private static string? Str(JsonElement root, string path, string key) =>
        !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw new CheckpointFormatException(path, $"field '{key}' must be a string", key);

    private static double? Num(JsonElement root, string path, string key) =>
        !root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new CheckpointFormatException(path, $"field '{key}' must be a number", key);

    private static bool Bool(JsonElement root, string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.True;
}
