using EdgeTune.Adapters;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;

namespace EdgeTune.Tests.Adapters;

public class LoraGgufExporterTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WritesLlamaCppAdapterMetadataAndTensors(bool rsLora)
    {
        using var dir = new TempDir();
        var cfg = AdapterTestUtil.Config();
        using var model = DecoderModel.CreateRandom(cfg, 3, RopeStyle.HalfSplit);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, UseRsLora = rsLora, TargetModules = ["q_proj", "down_proj"] });
        AdapterTestUtil.RandomizeB(adapter, 2);
        string path = dir.File("lora.gguf");
        LoraGgufExporter.Export(adapter, model, path);
        using var g = GgufFile.Open(path);
        Assert.Equal("llama", g.Architecture);
        Assert.Equal("adapter", g.GetMetadata("general.type").AsString());
        Assert.Equal("lora", g.GetMetadata("adapter.type").AsString());
        Assert.Equal(adapter.Modules[0].Scale * 4, g.GetMetadata("adapter.lora.alpha").AsDouble(), 5);
        Assert.Equal(4 * cfg.NumHiddenLayers, g.Tensors.Count);
        var a = g.Tensors.Single(t => t.Name == "blk.1.attn_q.weight.lora_a");
        Assert.Equal([4, cfg.HiddenSize], a.Shape);
        Assert.Equal(DType.F32, a.DType);
        Assert.Equal([cfg.HiddenSize, 4], g.Tensors.Single(t => t.Name == "blk.0.ffn_down.weight.lora_b").Shape);
        // llama arch is interleaved: the half-split model's q lora_b rows are permuted; down's are not
        using var qb = g.GetTensor("blk.0.attn_q.weight.lora_b");
        using var expect = RopePermutation.HfToGguf(adapter.Modules[0].B.Value, cfg.NumAttentionHeads);
        Assert.Equal(expect.ToFloatArray(), qb.ToFloatArray());
        using var db = g.GetTensor("blk.0.ffn_down.weight.lora_b");
        Assert.Equal(adapter.Modules[1].B.Value.ToFloatArray(), db.ToFloatArray());
    }

    [Fact]
    public void DoraAndForeignModelsAreRefused()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        using var other = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 4);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { UseDora = true });
        Assert.Throws<NotSupportedException>(() => LoraGgufExporter.Export(adapter, dir.File("x.gguf")));
        Assert.Throws<ArgumentException>(() => LoraGgufExporter.Export(adapter, other, dir.File("x.gguf")));
        Assert.False(File.Exists(dir.File("x.gguf")));
    }

    /// <summary>One alpha per file: the most common s·r; modules with another s·r have the ratio folded into lora_b.</summary>
    [Fact]
    public void PerModuleScalesAreFoldedIntoLoraB()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        var cfg = new LoraConfig
        {
            Rank = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj", "down_proj"],
            RankPattern = new Dictionary<string, int> { ["v_proj"] = 2 }, AlphaPattern = new Dictionary<string, double> { ["model.layers.1.mlp.down_proj"] = 2 },
        };
        using var adapter = LoraInjector.Apply(model, cfg);
        AdapterTestUtil.RandomizeB(adapter, 4);
        string path = dir.File("lora.gguf");
        LoraGgufExporter.Export(adapter, path);
        using var g = GgufFile.Open(path);
        Assert.Equal(8, g.GetMetadata("adapter.lora.alpha").AsDouble(), 6); // s·r = α = 8 for q, v and layer 0 down; 2 for layer 1 down
        Assert.Equal([2, AdapterTestUtil.Config().HiddenSize], g.Tensors.Single(t => t.Name == "blk.0.attn_v.weight.lora_a").Shape);
        var down1 = adapter.Modules.Single(m => m.LayerName == "model.layers.1.mlp.down_proj");
        using var b1 = g.GetTensor("blk.1.ffn_down.weight.lora_b");
        float[] expect = down1.B.Value.ToFloatArray().Select(x => x * 0.25f).ToArray(); // s·r = 2 against the file's 8
        Assert.Equal(expect, b1.ToFloatArray());
        using var b0 = g.GetTensor("blk.0.ffn_down.weight.lora_b");
        Assert.Equal(adapter.Modules.Single(m => m.LayerName == "model.layers.0.mlp.down_proj").B.Value.ToFloatArray(), b0.ToFloatArray());
    }

    [Fact]
    public void AdaptersThatReplaceWholeModulesAreRefused()
    {
        using var dir = new TempDir();
        using var model = DecoderModel.CreateRandom(AdapterTestUtil.Config(), 3);
        string folder = dir.File("peft");
        using (var a = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 2, TargetModules = ["q_proj"] }))
        {
            using var head = model.LmHead.Value.Clone();
            PeftAdapterTests.WritePeftFolder(folder, """{"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}""",
                a, false, [new("base_model.model.lm_head.weight", head)]);
            a.Remove();
        }
        using var loaded = AdapterFiles.Load(folder, model);
        var e = Assert.Throws<NotSupportedException>(() => LoraGgufExporter.Export(loaded, dir.File("x.gguf")));
        Assert.Contains("lm_head", e.Message);
        Assert.Contains("modules_to_save", e.Message);
        Assert.False(File.Exists(dir.File("x.gguf")));
    }
}
