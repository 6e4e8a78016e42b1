using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using EdgeTune.Adapters.Internal;
using EdgeTune.Formats;
using EdgeTune.Internal;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// Hugging Face PEFT adapter folders: <c>adapter_config.json</c> + <c>adapter_model.safetensors</c> with PEFT
/// tensor names (<c>base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight</c>, <c>.lora_B.weight</c>,
/// DoRA <c>.lora_magnitude_vector</c>; the <c>.lora_A.default.weight</c> / <c>.lora_magnitude_vector.default.weight</c>
/// spellings of some PEFT versions are read too), q/k rows always in HF's half-split layout. Configs of any recent PEFT
/// version are read (see <see cref="ReadConfig(string, DecoderModel)"/>), per-module ranks and alphas included.
/// </summary>
public static class AdapterFiles
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    /// <summary>PEFT's PyTorch-pickle weights file, which is refused (unpickling can run code).</summary>
    public const string PickleWeightsFile = "adapter_model.bin";

    /// <summary>The folder under a fine-tuning run's output folder that holds its adapter.</summary>
    public const string RunSubfolder = "adapter";

    /// <summary>The adapter folder <paramref name="dir"/> names: itself when it holds <c>adapter_config.json</c>, else its
    /// <c>adapter/</c> subfolder when that does (a fine-tuning run's output folder).</summary>
    /// <exception cref="FileNotFoundException">Neither holds an adapter_config.json.</exception>
    public static string ResolveFolder(string dir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        if (File.Exists(Path.Combine(dir, ConfigFile))) return dir;
        string sub = Path.Combine(dir, RunSubfolder);
        if (File.Exists(Path.Combine(sub, ConfigFile))) return sub;
        string where = File.Exists(dir) ? $"'{dir}' is a file"
            : !Directory.Exists(dir) ? $"'{dir}' does not exist"
            : File.Exists(Path.Combine(dir, "model", "config.json")) ? $"'{dir}' is a full fine-tuning run (its model/ folder is a whole model: pass it as the model instead)"
            : $"'{dir}' holds no {ConfigFile} (nor does '{sub}')";
        throw new FileNotFoundException($"PEFT adapter: {where}; expected a PEFT adapter folder ({ConfigFile} + {WeightsFile}) or a fine-tuning run folder with an {RunSubfolder}/ subfolder",
            Path.Combine(dir, ConfigFile));
    }

    /// <summary>
    /// Writes the adapter into <paramref name="dir"/> (assembled in a sibling temporary folder and moved into
    /// place, replacing an existing folder) as PEFT writes it. target_modules lists the short names adapted (with
    /// layers_to_transform when not every decoder layer is), or the full layer names when no such pair describes the
    /// adapted set exactly; layers whose r or α differ from the config's go into rank_pattern / alpha_pattern; replaced
    /// embedding/head weights into modules_to_save. Tensors are F32.
    /// </summary>
    public static void Save(LoraAdapter adapter, string dir, string? baseModelNameOrPath = null) =>
        Save(adapter, dir, baseModelNameOrPath, Security.RunFiles.Plain);

    /// <summary>As <see cref="Save(LoraAdapter, string, string?)"/>, both files through <paramref name="files"/>
    /// (encrypted, bound to their final paths, in an encrypted run folder).</summary>
    public static void Save(LoraAdapter adapter, string dir, string? baseModelNameOrPath, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
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
            foreach (string module in adapter.SavedModules)
            {
                var w = module == "lm_head" ? model.LmHead : model.Embed;
                tensors.Add(new(LoraModule.PeftName(module, "weight"), F32(w.Value, owned)));
            }
            string json = ConfigJson(adapter, baseModelNameOrPath);
            FolderWriter.Write(dir, tmp =>
            {
                var staged = files.Staging(tmp, dir);
                staged.WriteAllText(Path.Combine(tmp, ConfigFile), json);
                SafeTensorsWriter.Write(staged, Path.Combine(tmp, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
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

    private static string ShortName(string layer) => layer[(layer.LastIndexOf('.') + 1)..];

    /// <summary>A rank/alpha pattern key that selects exactly <paramref name="layer"/> in every PEFT version: the name
    /// after its first segment ("layers.3.self_attn.q_proj"), regex-escaped (older PEFT needs a "." before the key,
    /// newer ones match keys as regular expressions).</summary>
    private static string LayerKey(string layer) => Regex.Escape(layer[(layer.IndexOf('.') + 1)..]);

    private static string ConfigJson(LoraAdapter adapter, string? baseModel)
    {
        var cfg = adapter.Config;
        var model = adapter.Model;
        var modules = adapter.Modules;
        var shorts = new List<string>();
        var layers = new SortedSet<int>();
        foreach (var m in modules)
        {
            int li = ModuleTree.LayerIndex(m.LayerName);
            string s = ShortName(m.LayerName);
            if (!shorts.Contains(s)) shorts.Add(s);
            if (li >= 0) layers.Add(li);
        }
        // PEFT selects every projection whose short name is listed (in the listed layers): usable only when that is exactly the adapted set.
        var adapted = modules.Select(m => m.LayerName).ToHashSet();
        var implied = model.Projections()
            .Where(p => shorts.Contains(ShortName(p.Layer.Name)) && layers.Contains(ModuleTree.LayerIndex(p.Path)))
            .Select(p => p.Layer.Name).ToHashSet();
        bool byShortName = implied.SetEquals(adapted);

        var json = new AdapterConfigJson(
            PeftType: "LORA",
            TaskType: "CAUSAL_LM",
            BaseModelNameOrPath: baseModel,
            R: cfg.Rank,
            LoraAlpha: cfg.Alpha,
            LoraDropout: cfg.Dropout,
            TargetModules: byShortName ? shorts : modules.Select(m => m.LayerName).ToList(),
            LayersToTransform: byShortName && layers.Count != model.Layers.Count ? layers.ToList() : null,
            LayersPattern: null,
            RankPattern: Pattern(modules, m => m.Rank, cfg.Rank),
            AlphaPattern: Pattern(modules, m => m.Alpha, cfg.Alpha),
            ModulesToSave: adapter.SavedModules.Count == 0 ? null : adapter.SavedModules.Select(ShortName).ToList(),
            UseRslora: cfg.UseRsLora,
            UseDora: cfg.UseDora,
            Bias: "none",
            FanInFanOut: false,
            InitLoraWeights: cfg.Init == LoraInit.Gaussian ? JsonValue.Create("gaussian") : JsonValue.Create(true),
            InferenceMode: true);
        return EdgeTuneJson.Write(json, EdgeTuneJson.Default.AdapterConfigJson, indented: true);
    }

    /// <summary>{key: value} for the modules whose value differs from the config's: one short-name key when every
    /// adapted layer of that short name shares the value, else one key per layer (<see cref="LayerKey"/>); in module order.</summary>
    private static Dictionary<string, T> Pattern<T>(IReadOnlyList<LoraModule> modules, Func<LoraModule, T> value, T common) where T : IEquatable<T>
    {
        var pattern = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var group in modules.GroupBy(m => ShortName(m.LayerName)))
        {
            var values = group.Select(value).Distinct().ToList();
            if (values.Count == 1)
            {
                if (!values[0].Equals(common)) pattern[group.Key] = values[0];
                continue;
            }
            foreach (var m in group)
            {
                T v = value(m);
                if (!v.Equals(common)) pattern[LayerKey(m.LayerName)] = v;
            }
        }
        return pattern;
    }

    /// <summary>
    /// Reads <c>adapter_config.json</c> in <paramref name="dir"/> (or in its <c>adapter/</c> subfolder, see
    /// <see cref="ResolveFolder"/>) into a <see cref="LoraConfig"/> whose TargetModules are the full names of the model's
    /// layers it selects, with rank_pattern/alpha_pattern kept as PEFT keys them. PEFT's target_modules forms (list of
    /// names, regex string, "all-linear", or absent = PEFT's default for the architecture), exclude_modules,
    /// layers_to_transform (+ layers_pattern), use_rslora, use_dora, lora_dropout and init_lora_weights are honoured;
    /// peft_type other than LORA, task_type other than CAUSAL_LM, bias other than "none", fan_in_fan_out, lora_bias,
    /// use_qalora, layer_replication, megatron_config, loftq_config, target_parameters, trainable_token_indices and
    /// initialisations that rewrite the base weights (PiSSA, OLoRA, CorDA, LoftQ) are refused, naming the field.
    /// </summary>
    /// <exception cref="CheckpointFormatException">The config is malformed or asks for something unsupported (names the field).</exception>
    public static LoraConfig ReadConfig(string dir, DecoderModel model) => ReadConfig(dir, model, Security.RunFiles.Plain);

    /// <summary>As <see cref="ReadConfig(string, DecoderModel)"/>, reading through <paramref name="files"/>.</summary>
    public static LoraConfig ReadConfig(string dir, DecoderModel model, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(files);
        string path = Path.Combine(ResolveFolder(dir), ConfigFile);
        return PeftConfigReader.Read(path, model, File.Exists(path) ? files.ReadAllText(path) : null).Lora;
    }

    /// <summary>
    /// Applies the adapter saved in <paramref name="dir"/> (a PEFT folder, or a run folder with an <c>adapter/</c>
    /// subfolder) to <paramref name="model"/> under <paramref name="adapterName"/> (base frozen). Every tensor the config
    /// implies must be present with its exact shape (each layer's own rank), and no other tensor may be: errors name the
    /// file and the tensors. q/k lora_B rows are permuted when the model runs interleaved RoPE. Full weights of
    /// modules_to_save (embed_tokens, lm_head; also found without being listed, as PEFT saves resized embeddings) replace
    /// the model's until <see cref="LoraAdapter.Remove"/>. On error the model is left as it was.
    /// </summary>
    public static LoraAdapter Load(string dir, DecoderModel model, string adapterName = "default") =>
        Load(dir, model, adapterName, Security.RunFiles.Plain);

    /// <summary>As <see cref="Load(string, DecoderModel, string)"/>, reading through <paramref name="files"/> (an
    /// encrypted adapter's weights are decrypted into memory).</summary>
    public static LoraAdapter Load(string dir, DecoderModel model, string adapterName, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(files);
        dir = ResolveFolder(dir);
        string configPath = Path.Combine(dir, ConfigFile);
        var config = PeftConfigReader.Read(configPath, model, files.ReadAllText(configPath));
        string path = Path.Combine(dir, WeightsFile);
        if (!File.Exists(path))
        {
            string bin = Path.Combine(dir, PickleWeightsFile);
            if (File.Exists(bin))
                throw new CheckpointFormatException(bin, $"PyTorch pickle weights are not read (loading a pickle can run code); save the adapter with safe_serialization=True or convert it to {WeightsFile}");
            throw new FileNotFoundException($"PEFT adapter: '{path}' does not exist", path);
        }
        using var file = files.OpenSafeTensors(path);
        // canonical PEFT name → name in the file
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
            if (!names.TryAdd(Canonical(t.Name), t.Name))
                throw new CheckpointFormatException(path, $"holds both '{names[Canonical(t.Name)]}' and '{t.Name}', two spellings of one tensor", t.Name);

        var saved = new List<string>(config.ModulesToSave);
        foreach (string module in new[] { DecoderModel.Names.EmbedModule, "lm_head" })
            if (!saved.Contains(module) && names.ContainsKey(LoraModule.PeftName(module, "weight"))) saved.Add(module);
        if (model.TiedHead && saved.Count == 1)
            throw new CheckpointFormatException(path, $"replaces only '{saved[0]}' of a model whose head is tied to its embedding; PEFT unties them, which this model cannot represent",
                LoraModule.PeftName(saved[0], "weight"));

        var adapter = LoraInjector.Apply(model, config.Lora, adapterName);
        try
        {
            var expected = adapter.Parameters.Select(p => p.Name).Concat(saved.Select(m => LoraModule.PeftName(m, "weight"))).ToHashSet();
            var missing = expected.Where(n => !names.ContainsKey(n)).ToList();
            if (missing.Count > 0)
                throw new CheckpointFormatException(path, $"{missing.Count} adapter tensor(s) missing: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", …" : "")}", missing[0]);
            var extra = names.Where(kv => !expected.Contains(kv.Key)).Select(kv => kv.Value).ToList();
            if (extra.Count > 0)
                throw new CheckpointFormatException(path, $"{extra.Count} tensor(s) the adapter config does not account for: {string.Join(", ", extra.Take(8))}{(extra.Count > 8 ? ", …" : "")}", extra[0]);
            foreach (var m in adapter.Modules)
            {
                Copy(file, path, names[m.A.Name], m.A, model, null);
                Copy(file, path, names[m.B.Name], m.B, model, m.LayerName);
                if (m.Magnitude is { } g) Copy(file, path, names[g.Name], g, model, m.LayerName);
            }
            if (saved.Count > 0) LoadSavedModules(file, path, names, saved, adapter);
            return adapter;
        }
        catch
        {
            adapter.Remove();
            throw;
        }
    }

    /// <summary>PEFT's plain spelling of a tensor name: drops the adapter name some versions keep
    /// (<c>lora_A.default.weight</c>, <c>lora_magnitude_vector.default.weight</c>, <c>modules_to_save.default.weight</c>).</summary>
    private static string Canonical(string name)
    {
        foreach (string part in new[] { "lora_A", "lora_B" })
            if (name.EndsWith($".{part}.default.weight", StringComparison.Ordinal))
                return name[..^".default.weight".Length] + ".weight";
        foreach (string suffix in new[] { ".lora_magnitude_vector.default.weight", ".lora_magnitude_vector.weight", ".lora_magnitude_vector.default" })
            if (name.EndsWith(suffix, StringComparison.Ordinal))
                return name[..^suffix.Length] + "." + LoraModule.MagnitudeSuffix;
        const string saved = ".modules_to_save.default.weight";
        if (name.EndsWith(saved, StringComparison.Ordinal)) return name[..^saved.Length] + ".weight";
        return name;
    }

    private static void LoadSavedModules(SafeTensorsFile file, string path, Dictionary<string, string> names, List<string> saved, LoraAdapter adapter)
    {
        var model = adapter.Model;
        Tensor? embed = null, head = null;
        try
        {
            foreach (string module in saved)
            {
                string name = names[LoraModule.PeftName(module, "weight")];
                using var t = file.GetTensor(name);
                int[] shape = [model.VocabSize, model.Config.HiddenSize];
                if (!t.Shape.SequenceEqual(shape))
                    throw new CheckpointFormatException(path, $"shape {t.ShapeString} differs from the model's [{shape[0]}, {shape[1]}] (an adapter trained with a resized vocabulary, or for another model)", name);
                if (t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
                    throw new CheckpointFormatException(path, $"dtype {t.DType} is not a float type", name);
                var f32 = t.To(DType.F32);
                if (module == "lm_head") head = f32; else embed = f32;
            }
            if (model.TiedHead && embed is not null && head is not null && !embed.ReadOnlySpan<float>().SequenceEqual(head.ReadOnlySpan<float>()))
                throw new CheckpointFormatException(path, "embed_tokens and lm_head differ, but the model ties its head to its embedding (tie_word_embeddings)",
                    names[LoraModule.PeftName("lm_head", "weight")]);
            adapter.ReplaceEmbeddings(embed, head);
            embed = head = null; // owned by the adapter now
        }
        finally
        {
            embed?.Dispose();
            head?.Dispose();
        }
    }

    private static void Copy(SafeTensorsFile file, string path, string fileName, Autograd.Parameter p, DecoderModel model, string? ropeLayer)
    {
        using var t = file.GetTensor(fileName);
        if (!t.Shape.SequenceEqual(p.Value.Shape))
            throw new CheckpointFormatException(path, $"shape {t.ShapeString} differs from the {p.Value.ShapeString} the config and model imply", fileName);
        if (t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            throw new CheckpointFormatException(path, $"dtype {t.DType} is not a float type", fileName);
        using var wide = t.To(p.Value.DType);
        using var permuted = ropeLayer is null ? null : PeftLayout.Convert(model, ropeLayer, wide, RopeStyle.HalfSplit, model.RopeStyle);
        Autograd.Internal.TensorMath.CopyBytes(permuted ?? wide, p.Value);
    }
}

/// <summary>
/// adapter_config.json as PEFT writes it. Keys and JSON types are PEFT's: base_model_name_or_path, layers_to_transform,
/// layers_pattern and modules_to_save are written as null when unset (PEFT's own files carry them), and
/// init_lora_weights is either true or the string "gaussian".
/// </summary>
internal sealed record AdapterConfigJson(
    string PeftType,
    string TaskType,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? BaseModelNameOrPath,
    int R,
    double LoraAlpha,
    double LoraDropout,
    IReadOnlyList<string> TargetModules,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] IReadOnlyList<int>? LayersToTransform,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? LayersPattern,
    Dictionary<string, int> RankPattern,
    Dictionary<string, double> AlphaPattern,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] IReadOnlyList<string>? ModulesToSave,
    bool UseRslora,
    bool UseDora,
    string Bias,
    bool FanInFanOut,
    JsonNode InitLoraWeights,
    bool InferenceMode);
