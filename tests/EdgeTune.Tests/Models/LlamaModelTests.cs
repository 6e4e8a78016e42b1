using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Models;

public class LlamaModelTests
{
    internal static HfConfig SmallConfig(string type = "llama", bool bias = false, bool tied = true, RopeScaling? scaling = null) => new()
    {
        ModelType = type, HiddenSize = 24, IntermediateSize = 37, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 6, VocabSize = 53, RmsNormEps = 1e-5, RopeTheta = 10000,
        MaxPositionEmbeddings = 64, TieWordEmbeddings = tied, AttentionBias = bias, RopeScaling = scaling,
    };

    [Theory]
    [InlineData("llama", false, true)]
    [InlineData("qwen2", true, false)]
    [InlineData("mistral", false, false)]
    public void PrefillEqualsTokenByToken(string type, bool bias, bool tied)
    {
        var cfg = SmallConfig(type, bias, tied);
        using var model = DecoderModel.CreateRandom(cfg, seed: 7, std: 0.2f);
        if (bias) // random biases so the bias path matters
            foreach (var p in model.Parameters.Matching("*.bias")) new Rng(3).FillGaussian(p.Value.Span<float>(), 0, 0.5f);
        int[] ids = [1, 5, 9, 52, 0, 17, 33];
        int v = cfg.VocabSize;
        var batched = new float[ids.Length * v];
        using (var cache = model.CreateCache(16)) model.Forward(ids, cache, batched);
        using var c2 = model.CreateCache(16);
        var one = new float[v];
        for (int i = 0; i < ids.Length; i++)
        {
            model.Forward([ids[i]], c2, one);
            for (int j = 0; j < v; j++) Assert.Equal(batched[i * v + j], one[j], 1e-4f);
        }
        Assert.Equal(ids.Length, c2.Length);
    }

    [Fact]
    public void Llama3RopeScalingChangesOnlyLowFrequencies()
    {
        var plain = LlamaFamily.Instance.Rope(SmallConfig(), 0).InverseFrequencies;
        var scaled = LlamaFamily.Instance.Rope(SmallConfig(scaling: new RopeScaling("llama3", 8, 1, 4, 8192)), 0).InverseFrequencies;
        Assert.Equal(plain[0], scaled[0]); // the highest frequency is kept
        Assert.True(scaled[^1] < plain[^1]); // the lowest is divided by the factor
    }

    [Fact]
    public void ShapeErrorsNameTheTensor()
    {
        using var model = DecoderModel.CreateRandom(SmallConfig(), 1);
        using var cache = model.CreateCache(4);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward([53], cache, new float[53]));
        Assert.Throws<ShapeException>(() => model.Forward([1], cache, new float[52]));
        Assert.Throws<InvalidOperationException>(() => model.Forward([1, 2, 3, 4, 5], cache, new float[53]));
    }

    [Fact]
    public void SafetensorsCheckpointLoadsTheSameModel()
    {
        var cfg = SmallConfig("qwen2", bias: true, tied: false);
        using var model = DecoderModel.CreateRandom(cfg, seed: 11, std: 0.2f);
        string dir = Directory.CreateTempSubdirectory("edgetune-llama-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJson());
            SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), model.Parameters.Select(p => p.Value));
            var reader = CheckpointReader.Open(dir);
            using var loaded = ModelRegistry.Create(reader, CheckpointReader.ConfigFor(reader));
            var a = new float[cfg.VocabSize];
            var b = new float[cfg.VocabSize];
            using (var c = model.CreateCache(8)) model.Forward([3, 4, 5], c, a);
            using (var c = loaded.CreateCache(8)) loaded.Forward([3, 4, 5], c, b);
            Assert.Equal(a, b);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void UnsupportedModelTypeIsNamed()
    {
        var cfg = SmallConfig() with { ModelType = "gpt_neox" };
        string dir = Directory.CreateTempSubdirectory("edgetune-llama-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), cfg.ToJson());
            using (var m = DecoderModel.CreateRandom(SmallConfig(), 1))
                SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), m.Parameters.Select(p => p.Value));
            var e = Assert.Throws<NotSupportedException>(() => ModelLoader.Load(dir));
            Assert.Contains("gpt_neox", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
