using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;

namespace EdgeTune.Tests.Adapters;

/// <summary>
/// Adapter folders as PEFT itself writes them (config variants of recent PEFT versions, both tensor-name spellings),
/// written here by hand: they load into the layers PEFT would adapt, with each layer's own r and α, and give the logits
/// of the same adapter injected directly. Unsupported settings are refused naming the field; our own saves round-trip
/// exactly for every family.
/// </summary>
public class PeftAdapterTests
{
    /// <summary>Three layers (so layer selection shows), GQA, untied head.</summary>
    private static HfConfig Cfg => AdapterTestUtil.Config() with { NumHiddenLayers = 3 };

    private static string L(int layer, string proj) =>
        $"model.layers.{layer}.{(proj is "gate_proj" or "up_proj" or "down_proj" ? "mlp" : "self_attn")}.{proj}";

    private static readonly string[] Attn = ["q_proj", "k_proj", "v_proj", "o_proj"];
    private static readonly string[] All7 = [.. Attn, "gate_proj", "up_proj", "down_proj"];

    /// <param name="Json">adapter_config.json as PEFT writes it.</param>
    /// <param name="Expected">Every layer PEFT adapts with its r and α (the direct injection uses exactly these).</param>
    /// <param name="PeftDefaultSpelling">Tensor names with the adapter name (<c>lora_A.default.weight</c>, <c>lora_magnitude_vector.default.weight</c>).</param>
    public sealed record Variant(string Json, Dictionary<string, (int R, double Alpha)> Expected, bool RsLora = false, bool Dora = false, bool PeftDefaultSpelling = false);

    private static Dictionary<string, (int, double)> Layers(IEnumerable<int> layers, IEnumerable<string> projs, Func<int, string, (int, double)> ra) =>
        layers.SelectMany(l => projs.Select(p => (l, p))).ToDictionary(x => L(x.l, x.p), x => ra(x.l, x.p));

    public static readonly Dictionary<string, Variant> Variants = new()
    {
        // list targets, rank_pattern by short name and by a "."-suffix, alpha_pattern by a full regex, rsLoRA, and the
        // fields recent PEFT versions write (tolerated at their defaults, unknown ones ignored)
        ["list-patterns-rslora"] = new("""
            {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "org/base", "revision": null,
             "r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "target_modules": ["v_proj", "q_proj", "down_proj"],
             "rank_pattern": {"v_proj": 2, "layers.2.mlp.down_proj": 6},
             "alpha_pattern": {"model\\.layers\\.[01]\\.self_attn\\.q_proj": 3},
             "use_rslora": true, "use_dora": false, "bias": "none", "fan_in_fan_out": false, "init_lora_weights": true,
             "inference_mode": true, "modules_to_save": null, "layers_to_transform": null, "layers_pattern": null,
             "exclude_modules": null, "layer_replication": null, "loftq_config": {}, "megatron_config": null,
             "megatron_core": "megatron.core", "lora_bias": false, "use_qalora": false, "qalora_group_size": 16,
             "target_parameters": null, "trainable_token_indices": null, "eva_config": null, "corda_config": null,
             "runtime_config": {"ephemeral_gpu_offload": false}, "auto_mapping": null, "peft_version": "0.17.1",
             "a_field_from_the_future": {"x": 1}}
            """,
            Layers([0, 1, 2], ["q_proj", "v_proj", "down_proj"], (l, p) => p switch
            {
                "q_proj" => (4, l < 2 ? 3 : 8),
                "v_proj" => (2, 8),
                _ => (l == 2 ? 6 : 4, 8),
            }), RsLora: true, PeftDefaultSpelling: true),
        // a regex string selects by full name; alpha_pattern by short name; gaussian init
        ["regex-string"] = new("""
            {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 3, "lora_alpha": 6, "init_lora_weights": "gaussian",
             "target_modules": "model\\.layers\\.(0|2)\\.(self_attn\\.(k|o)_proj|mlp\\.up_proj)", "alpha_pattern": {"o_proj": 1.5}}
            """,
            Layers([0, 2], ["k_proj", "o_proj", "up_proj"], (_, p) => (3, p == "o_proj" ? 1.5 : 6))),
        // every block projection but the excluded ones
        ["all-linear-exclude"] = new("""
            {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": "all-linear",
             "exclude_modules": ["gate_proj", "model.layers.1.self_attn.k_proj"]}
            """,
            Layers([0, 1, 2], All7, (_, _) => (2, 4)).Where(kv => !kv.Key.EndsWith("gate_proj", StringComparison.Ordinal) && kv.Key != L(1, "k_proj"))
                .ToDictionary(kv => kv.Key, kv => kv.Value)),
        ["layer-int-with-pattern"] = new("""
            {"peft_type": "LORA", "r": 4, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
             "layers_to_transform": 1, "layers_pattern": "layers"}
            """,
            Layers([1], Attn, (_, _) => (4, 16))),
        // layers_to_transform narrows suffix matches only: an exact full name is taken whatever its layer (as PEFT does)
        ["layer-list-exact-name"] = new("""
            {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["up_proj", "model.layers.0.self_attn.q_proj"],
             "layers_to_transform": [1, 2], "layers_pattern": ["h", "layers"]}
            """,
            new Dictionary<string, (int, double)> { [L(0, "q_proj")] = (4, 8), [L(1, "up_proj")] = (4, 8), [L(2, "up_proj")] = (4, 8) }),
        // no target_modules: PEFT's default for llama
        ["default-targets"] = new("""{"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": null}""",
            Layers([0, 1, 2], ["q_proj", "v_proj"], (_, _) => (2, 2))),
        ["dora-ranks"] = new("""
            {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "use_dora": true,
             "target_modules": ["q_proj", "o_proj", "down_proj"], "rank_pattern": {"o_proj": 2}, "alpha_pattern": {"down_proj": 2}}
            """,
            Layers([0, 1, 2], ["q_proj", "o_proj", "down_proj"], (_, p) => (p == "o_proj" ? 2 : 4, p == "down_proj" ? 2 : 8)), Dora: true),
        ["dora-ranks-default-spelling"] = new("""
            {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "use_dora": true,
             "target_modules": ["q_proj", "o_proj", "down_proj"], "rank_pattern": {"o_proj": 2}, "alpha_pattern": {"down_proj": 2}}
            """,
            Layers([0, 1, 2], ["q_proj", "o_proj", "down_proj"], (_, p) => (p == "o_proj" ? 2 : 4, p == "down_proj" ? 2 : 8)), Dora: true, PeftDefaultSpelling: true),
    };

    public static IEnumerable<object[]> VariantNames => Variants.Keys.Select(k => new object[] { k });

    /// <summary>Writes adapter_config.json and adapter_model.safetensors the way PEFT does, from a directly injected adapter.</summary>
    internal static void WritePeftFolder(string dir, string json, LoraAdapter adapter, bool defaultSpelling, IEnumerable<KeyValuePair<string, Tensor>>? extra = null)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, AdapterFiles.ConfigFile), json);
        string Spell(string n) => !defaultSpelling ? n
            : n.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal) ? n + ".default.weight"
            : n.Replace(".lora_A.weight", ".lora_A.default.weight", StringComparison.Ordinal).Replace(".lora_B.weight", ".lora_B.default.weight", StringComparison.Ordinal);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var m in adapter.Modules)
            foreach (var p in m.Parameters) tensors.Add(new(Spell(p.Name), p.Value));
        if (extra is not null) tensors.AddRange(extra);
        SafeTensorsWriter.Write(Path.Combine(dir, AdapterFiles.WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>The adapter of <paramref name="v"/> injected directly: exactly the expected layers with their r and α.</summary>
    private static LoraConfig Direct(Variant v) => new()
    {
        Rank = 1, Alpha = 1, UseRsLora = v.RsLora, UseDora = v.Dora, TargetModules = [.. v.Expected.Keys],
        RankPattern = v.Expected.ToDictionary(kv => kv.Key, kv => kv.Value.R),
        AlphaPattern = v.Expected.ToDictionary(kv => kv.Key, kv => kv.Value.Alpha),
    };

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void PeftFolderGivesTheLogitsOfTheDirectlyInjectedAdapter(string name)
    {
        var v = Variants[name];
        using var dir = new TempDir();
        string folder = dir.File("peft");
        using var model = DecoderModel.CreateRandom(Cfg, 3, std: 0.2f);
        float[] baseLogits = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        float[] expected;
        using (var direct = LoraInjector.Apply(model, Direct(v)))
        {
            AdapterTestUtil.RandomizeB(direct, 7);
            expected = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
            WritePeftFolder(folder, v.Json, direct, v.PeftDefaultSpelling);
            direct.Remove();
        }
        Assert.True(AdapterTestUtil.MaxAbsDiff(baseLogits, expected) > 0.05, "the adapter should change the logits");
        using var loaded = AdapterFiles.Load(folder, model);
        Assert.Equal(v.Expected.Keys.Order(), loaded.Modules.Select(m => m.LayerName).Order());
        foreach (var m in loaded.Modules)
        {
            var (r, alpha) = v.Expected[m.LayerName];
            Assert.Equal(r, m.Rank);
            Assert.Equal(alpha, m.Alpha);
            Assert.Equal(v.RsLora ? alpha / Math.Sqrt(r) : alpha / r, m.Scale, 12);
            Assert.Equal(v.Dora, m.IsDora);
        }
        Assert.Equal(expected, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        // and what it merges to
        loaded.Merge();
        double d = AdapterTestUtil.MaxAbsDiff(expected, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        Assert.True(d <= 1e-5, $"{name}: merged vs unmerged max |Δ| {d:E3}");
        loaded.Remove();
        Assert.True(AdapterTestUtil.MaxAbsDiff(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt)) <= 1e-5);
    }

    [Theory]
    [InlineData("\"peft_type\": \"LOHA\"", "peft_type")]
    [InlineData("\"task_type\": \"SEQ_CLS\"", "task_type")]
    [InlineData("\"bias\": \"lora_only\"", "bias")]
    [InlineData("\"fan_in_fan_out\": true", "fan_in_fan_out")]
    [InlineData("\"use_qalora\": true", "use_qalora")]
    [InlineData("\"lora_bias\": true", "lora_bias")]
    [InlineData("\"layer_replication\": [[0, 2], [1, 3]]", "layer_replication")]
    [InlineData("\"megatron_config\": {\"tensor_model_parallel_size\": 2}", "megatron_config")]
    [InlineData("\"loftq_config\": {\"loftq_bits\": 4, \"loftq_iter\": 1}", "loftq_config")]
    [InlineData("\"target_parameters\": [\"mlp.experts.gate_up_proj\"]", "target_parameters")]
    [InlineData("\"trainable_token_indices\": [5, 7]", "trainable_token_indices")]
    [InlineData("\"init_lora_weights\": \"pissa_niter_4\"", "init_lora_weights")]
    [InlineData("\"init_lora_weights\": \"olora\"", "init_lora_weights")]
    [InlineData("\"modules_to_save\": [\"score\"]", "modules_to_save")]
    [InlineData("\"target_modules\": [\"q_proj\", \"lm_head\"]", "target_modules")]
    [InlineData("\"target_modules\": [\"q_proj\", \"embed_tokens\"]", "target_modules")]
    [InlineData("\"target_modules\": \"model.*q_proj\", \"layers_to_transform\": [1]", "layers_to_transform")]
    [InlineData("\"target_modules\": [\"qkv\"]", "target_modules")]
    [InlineData("\"layers_to_transform\": [7]", "target_modules")]
    [InlineData("\"rank_pattern\": {\"q_proj\": 0}", "rank_pattern")]
    [InlineData("\"alpha_pattern\": {\"q_proj\": \"high\"}", "alpha_pattern")]
    [InlineData("\"use_dora\": \"yes\"", "use_dora")]
    public void UnsupportedSettingsAreRefusedNamingTheField(string setting, string field)
    {
        using var dir = new TempDir();
        string folder = dir.File("peft");
        using var model = DecoderModel.CreateRandom(Cfg, 3);
        using (var a = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["q_proj"] }))
        {
            // later keys win in System.Text.Json, so the setting overrides the defaults before it
            WritePeftFolder(folder, "{\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], " + setting + "}", a, false);
            a.Remove();
        }
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains(AdapterFiles.ConfigFile, e.Message);
        Assert.All(model.Projections(), p => Assert.IsType<Linear>(p.Layer)); // nothing applied
    }

    [Fact]
    public void PickleWeightsAreRefusedByName()
    {
        using var dir = new TempDir();
        string folder = dir.File("peft");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, AdapterFiles.ConfigFile), """{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}""");
        File.WriteAllBytes(Path.Combine(folder, AdapterFiles.PickleWeightsFile), [0x80, 0x02, 0x7d, 0x71]);
        using var model = DecoderModel.CreateRandom(Cfg, 3);
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains(AdapterFiles.PickleWeightsFile, e.Message);
        Assert.Contains("pickle", e.Message);
        Assert.All(model.Projections(), p => Assert.IsType<Linear>(p.Layer));
    }

    private static Tensor RandomTable(int rows, int cols, ulong seed)
    {
        var t = Tensor.Zeros(DType.F32, [rows, cols]);
        new Rng(seed).FillGaussian(t.Span<float>(), 0f, 0.3f);
        return t;
    }

    /// <summary>modules_to_save weights (both PEFT spellings) replace the model's embedding and head, giving the logits of
    /// the model with those tables swapped in by hand; Remove puts the originals back; Save writes them again.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ModulesToSaveReplaceTheEmbeddingAndHead(bool defaultSpelling)
    {
        using var dir = new TempDir();
        string folder = dir.File("peft");
        var cfg = Cfg;
        using var model = DecoderModel.CreateRandom(cfg, 3, std: 0.2f);
        Assert.False(model.TiedHead);
        float[] baseLogits = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        using var embed = RandomTable(cfg.VocabSize, cfg.HiddenSize, 1);
        using var head = RandomTable(cfg.VocabSize, cfg.HiddenSize, 2);
        float[] expected;
        using (var direct = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }))
        {
            AdapterTestUtil.RandomizeB(direct, 9);
            using var oldEmbed = model.Embed.Value.Clone();
            using var oldHead = model.LmHead.Value.Clone();
            EdgeTune.Autograd.Internal.TensorMath.CopyBytes(embed, model.Embed.Value);
            EdgeTune.Autograd.Internal.TensorMath.CopyBytes(head, model.LmHead.Value);
            expected = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
            EdgeTune.Autograd.Internal.TensorMath.CopyBytes(oldEmbed, model.Embed.Value);
            EdgeTune.Autograd.Internal.TensorMath.CopyBytes(oldHead, model.LmHead.Value);
            string mid = defaultSpelling ? ".modules_to_save.default" : "";
            WritePeftFolder(folder, """
                {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                 "modules_to_save": ["lm_head", "embed_tokens"]}
                """, direct, defaultSpelling,
                [new($"base_model.model.model.embed_tokens{mid}.weight", embed), new($"base_model.model.lm_head{mid}.weight", head)]);
            direct.Remove();
        }
        Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        using (var loaded = AdapterFiles.Load(folder, model))
        {
            Assert.Equal(["model.embed_tokens", "lm_head"], loaded.SavedModules.Order(StringComparer.Ordinal).Reverse());
            Assert.Equal(expected, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
            Assert.Equal(embed.ToFloatArray(), model.Parameters["model.embed_tokens.weight"].Value.ToFloatArray());
            AdapterFiles.Save(loaded, dir.File("again"));
            loaded.Remove();
        }
        Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("again"), AdapterFiles.ConfigFile))))
            Assert.Equal(["embed_tokens", "lm_head"], doc.RootElement.GetProperty("modules_to_save").EnumerateArray().Select(e => e.GetString()!).Order());
        using (var st = SafeTensorsFile.Open(Path.Combine(dir.File("again"), AdapterFiles.WeightsFile)))
        using (var h = st.GetTensor("base_model.model.lm_head.weight"))
            Assert.Equal(head.ToFloatArray(), h.ToFloatArray());
        using var again = AdapterFiles.Load(dir.File("again"), model);
        Assert.Equal(expected, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        // a merged export carries the replaced tables
        again.Merge();
        EdgeTune.Formats.Export.ModelExporter.ExportSafetensors(model, dir.File("merged"));
        using var back = Formats.Export.ExportTestUtil.LoadBack(dir.File("merged"));
        Assert.True(AdapterTestUtil.MaxAbsDiff(expected, AdapterTestUtil.Logits(back, AdapterTestUtil.Prompt)) <= 1e-5);
    }

    /// <summary>A tied model takes one table for both names when PEFT saved both (equal); a head alone, or two different
    /// tables, cannot be represented and are refused.</summary>
    [Fact]
    public void ModulesToSaveOnATiedModel()
    {
        using var dir = new TempDir();
        var cfg = Cfg with { TieWordEmbeddings = true };
        using var model = DecoderModel.CreateRandom(cfg, 3, std: 0.2f);
        Assert.True(model.TiedHead);
        float[] baseLogits = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        using var table = RandomTable(cfg.VocabSize, cfg.HiddenSize, 4);
        using var other = RandomTable(cfg.VocabSize, cfg.HiddenSize, 5);
        using var a = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 2, TargetModules = ["q_proj"] });
        string Folder(string name, string save, params KeyValuePair<string, Tensor>[] extra)
        {
            string f = dir.File(name);
            WritePeftFolder(f, $$"""{"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "modules_to_save": {{save}}}""", a, false, extra);
            return f;
        }
        string both = Folder("both", "[\"embed_tokens\", \"lm_head\"]", new("base_model.model.model.embed_tokens.weight", table), new("base_model.model.lm_head.weight", table));
        string headOnly = Folder("head", "[\"lm_head\"]", new KeyValuePair<string, Tensor>("base_model.model.lm_head.weight", table));
        string differ = Folder("differ", "[\"embed_tokens\", \"lm_head\"]", new("base_model.model.model.embed_tokens.weight", table), new("base_model.model.lm_head.weight", other));
        a.Remove();

        Assert.Contains("modules_to_save", Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(headOnly, model)).Message);
        Assert.Contains("differ", Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(differ, model)).Message);
        Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
        using var loaded = AdapterFiles.Load(both, model);
        Assert.True(model.TiedHead);
        Assert.Equal(table.ToFloatArray(), model.Embed.Value.ToFloatArray());
        loaded.Remove();
        Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
    }

    /// <summary>A run folder (its adapter/ subfolder) loads like the adapter folder itself.</summary>
    [Fact]
    public void RunFolderResolvesToItsAdapterSubfolder()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(Cfg, 3, std: 0.2f);
        using (var a = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4 }))
        {
            AdapterTestUtil.RandomizeB(a, 3);
            AdapterFiles.Save(a, Path.Combine(dir.File("run"), AdapterFiles.RunSubfolder));
            a.Remove();
        }
        Assert.Equal(Path.Combine(dir.File("run"), "adapter"), AdapterFiles.ResolveFolder(dir.File("run")));
        using var loaded = AdapterFiles.Load(dir.File("run"), model);
        Assert.Equal(6, loaded.Modules.Count);
        var e = Assert.Throws<FileNotFoundException>(() => AdapterFiles.ResolveFolder(dir.Path));
        Assert.Contains(AdapterFiles.ConfigFile, e.Message);
    }

    /// <summary>Per-module ranks and alphas (short-name and per-layer patterns, rsLoRA), plain and DoRA: save → load gives
    /// identical logits and modules for every family; the config carries rank_pattern / alpha_pattern.</summary>
    [Theory]
    [InlineData("llama", false)]
    [InlineData("qwen3", false)]
    [InlineData("gemma3_text", false)]
    [InlineData("phi3", false)]
    [InlineData("llama", true)]
    [InlineData("phi3", true)]
    public void SaveThenLoadRoundTripsPerModuleRanksExactlyPerFamily(string family, bool dora)
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(Models.FamilyTests.Tiny(family, layers: 3), 5, std: 0.3f);
        var cfg = new LoraConfig
        {
            Rank = 3, Alpha = 6, UseRsLora = true, UseDora = dora, TargetModules = LoraConfig.AllProjections,
            RankPattern = new Dictionary<string, int> { ["o_proj"] = 2, ["model.layers.1.mlp.down_proj"] = 5, ["qkv_proj"] = 4 },
            AlphaPattern = new Dictionary<string, double> { ["layers\\.2\\..*"] = 1.25, ["gate_up_proj"] = 9 },
        };
        float[] trained;
        List<(string, int, double, double)> modules;
        using (var a = LoraInjector.Apply(model, cfg))
        {
            AdapterTestUtil.RandomizeB(a, 13);
            trained = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt.Select(i => i % model.VocabSize).ToArray());
            modules = a.Modules.Select(m => (m.LayerName, m.Rank, m.Alpha, m.Scale)).ToList();
            Assert.True(modules.Select(m => m.Item2).Distinct().Count() > 1 && modules.Select(m => m.Item3).Distinct().Count() > 1, "ranks and alphas should differ");
            AdapterFiles.Save(a, dir.File("a"));
            a.Remove();
        }
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("a"), AdapterFiles.ConfigFile))))
        {
            Assert.NotEmpty(doc.RootElement.GetProperty("rank_pattern").EnumerateObject());
            Assert.NotEmpty(doc.RootElement.GetProperty("alpha_pattern").EnumerateObject());
            Assert.Equal(JsonValueKind.True, doc.RootElement.GetProperty("init_lora_weights").ValueKind);
        }
        using var loaded = AdapterFiles.Load(dir.File("a"), model);
        Assert.Equal(modules, loaded.Modules.Select(m => (m.LayerName, m.Rank, m.Alpha, m.Scale)).ToList());
        Assert.Equal(trained, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt.Select(i => i % model.VocabSize).ToArray()));
        if (family == "phi3")
            Assert.Equal(["down_proj", "gate_up_proj", "o_proj", "qkv_proj"], loaded.Modules.Select(m => m.LayerName[(m.LayerName.LastIndexOf('.') + 1)..]).Distinct().Order());
    }

    /// <summary>An adapter whose modules no (short name × layers) pair describes is saved with full names, which PEFT
    /// matches exactly; it loads back to the same modules.</summary>
    [Fact]
    public void IrregularTargetSetsAreSavedByFullName()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(Cfg, 3, std: 0.2f);
        using (var a = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = [L(0, "q_proj"), L(2, "down_proj")] }))
        {
            AdapterFiles.Save(a, dir.File("a"));
            a.Remove();
        }
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("a"), AdapterFiles.ConfigFile))))
            Assert.Equal([L(0, "q_proj"), L(2, "down_proj")], doc.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));
        using var loaded = AdapterFiles.Load(dir.File("a"), model);
        Assert.Equal([L(0, "q_proj"), L(2, "down_proj")], loaded.Modules.Select(m => m.LayerName));
    }
}
