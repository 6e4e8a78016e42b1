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
}
