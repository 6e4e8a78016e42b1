using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;

namespace EdgeTune.Tests.Adapters;

public class AdapterFilesTests
{
    private static readonly LoraConfig Cfg = new() { Rank = 4, Alpha = 8, Dropout = 0.05, TargetModules = LoraConfig.AllLlamaProjections, LayerRange = (1, 1) };

    [Theory]
    [InlineData(RopeStyle.HalfSplit, false)]
    [InlineData(RopeStyle.Interleaved, false)]
    [InlineData(RopeStyle.HalfSplit, true)]
    [InlineData(RopeStyle.Interleaved, true)]
    public void SaveThenLoadGivesIdenticalLogits(RopeStyle style, bool dora)
    {
        using var dir = new TempDir();
        string folder = dir.File("adapter");
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, style, std: 0.2f);
        float[] baseLogits = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
        using (var adapter = LoraInjector.Apply(model, Cfg with { UseDora = dora }))
        {
            AdapterTestUtil.RandomizeB(adapter, 11);
            float[] trained = AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt);
            AdapterFiles.Save(adapter, folder, "test/tiny");
            adapter.Remove();
            Assert.Equal(baseLogits, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
            using var loaded = AdapterFiles.Load(folder, model);
            Assert.Equal(trained, AdapterTestUtil.Logits(model, AdapterTestUtil.Prompt));
            Assert.Equal(adapter.Config.Rank, loaded.Config.Rank);
            Assert.Equal(7, loaded.Modules.Count);
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, AdapterFiles.ConfigFile)));
        var root = doc.RootElement;
        Assert.Equal("LORA", root.GetProperty("peft_type").GetString());
        Assert.Equal(4, root.GetProperty("r").GetInt32());
        Assert.Equal(8, root.GetProperty("lora_alpha").GetDouble());
        Assert.Equal(dora, root.GetProperty("use_dora").GetBoolean());
        Assert.Equal("CAUSAL_LM", root.GetProperty("task_type").GetString());
        Assert.Equal([1], root.GetProperty("layers_to_transform").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(LoraConfig.AllLlamaProjections, root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));
        using var st = SafeTensorsFile.Open(Path.Combine(folder, AdapterFiles.WeightsFile));
        Assert.True(st.Contains("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
        Assert.True(st.Contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
        Assert.Equal(dora, st.Contains("base_model.model.model.layers.1.self_attn.k_proj.lora_magnitude_vector"));
    }

    /// <summary>Files are HF layout: an adapter saved from an interleaved model and loaded into its half-split twin
    /// (same function, q/k rows permuted) gives the same logits.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FilesAreHalfSplitWhateverTheModelRuns(bool dora)
    {
        using var dir = new TempDir();
        using var inter = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3, RopeStyle.Interleaved, std: 0.2f);
        using var half = AdapterTestUtil.HalfSplitTwin(inter);
        Assert.True(AdapterTestUtil.MaxAbsDiff(AdapterTestUtil.Logits(inter, AdapterTestUtil.Prompt), AdapterTestUtil.Logits(half, AdapterTestUtil.Prompt)) < 1e-5);
        using var adapter = LoraInjector.Apply(inter, Cfg with { UseDora = dora, LayerRange = null });
        AdapterTestUtil.RandomizeB(adapter, 12);
        AdapterFiles.Save(adapter, dir.File("a"));
        using var loaded = AdapterFiles.Load(dir.File("a"), half);
        double d = AdapterTestUtil.MaxAbsDiff(AdapterTestUtil.Logits(inter, AdapterTestUtil.Prompt), AdapterTestUtil.Logits(half, AdapterTestUtil.Prompt));
        Assert.True(d < 1e-5, $"max |Δ| {d:E3}");
    }

    private static string SaveOne(TempDir dir, DecoderModel model)
    {
        string folder = dir.File("adapter");
        using var adapter = LoraInjector.Apply(model, Cfg);
        AdapterFiles.Save(adapter, folder);
        adapter.Remove();
        return folder;
    }

    private static void Rewrite(string folder, Func<List<KeyValuePair<string, Tensor>>, List<KeyValuePair<string, Tensor>>> edit)
    {
        string path = Path.Combine(folder, AdapterFiles.WeightsFile);
        List<KeyValuePair<string, Tensor>> tensors;
        using (var st = SafeTensorsFile.Open(path))
            tensors = st.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, st.GetTensor(t.Name).Clone())).ToList();
        var edited = edit(tensors);
        SafeTensorsWriter.Write(path, edited);
        foreach (var t in tensors.Concat(edited)) t.Value.Dispose();
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = SaveOne(dir, model);
        const string victim = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight";
        Rewrite(folder, ts => ts.Where(t => t.Key != victim).ToList());
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains(victim, e.Message);
        Assert.Contains("missing", e.Message);
        Assert.IsType<EdgeTune.Nn.Linear>(model.Layers[1].Proj("mlp.up_proj")); // nothing left applied
    }

    [Fact]
    public void ExtraTensorIsNamed()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = SaveOne(dir, model);
        const string extra = "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight";
        Rewrite(folder, ts => [.. ts, new(extra, Tensor.Zeros(4, 24))]);
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains(extra, e.Message);
    }

    [Fact]
    public void ShapeMismatchIsNamed()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = SaveOne(dir, model);
        const string victim = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
        Rewrite(folder, ts => ts.Select(t => t.Key == victim ? new KeyValuePair<string, Tensor>(t.Key, Tensor.Zeros(4, 23)) : t).ToList());
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains(victim, e.Message);
        Assert.Contains("[4, 23]", e.Message);
    }

    [Theory]
    [InlineData("{\"peft_type\": \"PREFIX_TUNING\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", "peft_type")]
    [InlineData("{\"peft_type\": \"LORA\", \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"]}", "'r'")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"qkv\"]}", "target_modules")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"q_proj\": 2.5}}", "rank_pattern")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 4", "JSON")]
    public void MalformedConfigIsAClearError(string json, string expected)
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = SaveOne(dir, model);
        File.WriteAllText(Path.Combine(folder, AdapterFiles.ConfigFile), json);
        var e = Assert.Throws<CheckpointFormatException>(() => AdapterFiles.Load(folder, model));
        Assert.Contains(expected, e.Message);
        Assert.Contains(AdapterFiles.ConfigFile, e.Message);
    }

    [Fact]
    public void PeftRegexTargetsAndMissingFilesAreHandled()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = SaveOne(dir, model);
        File.WriteAllText(Path.Combine(folder, AdapterFiles.ConfigFile),
            "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": \"model\\\\.layers\\\\.1\\\\..*_proj\"}");
        using (var a = AdapterFiles.Load(folder, model)) { Assert.Equal(7, a.Modules.Count); a.Remove(); }
        File.Delete(Path.Combine(folder, AdapterFiles.WeightsFile));
        Assert.Throws<FileNotFoundException>(() => AdapterFiles.Load(folder, model));
        Assert.Throws<FileNotFoundException>(() => AdapterFiles.Load(dir.File("nowhere"), model));
    }
}
