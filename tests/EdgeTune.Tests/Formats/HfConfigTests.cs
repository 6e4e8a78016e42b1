using EdgeTune.Formats;

namespace EdgeTune.Tests.Formats;

public class HfConfigTests
{
    [SkippableFact]
    public void ReadsTinyLlamaConfig()
    {
        var c = HfConfig.Load(TestAssets.Require("tokenizers/tinyllama-1.1b-chat-v1.0/config.json"));
        Assert.Equal("llama", c.ModelType);
        Assert.Equal(["LlamaForCausalLM"], c.Architectures);
        Assert.Equal(2048, c.HiddenSize);
        Assert.Equal(5632, c.IntermediateSize);
        Assert.Equal(22, c.NumHiddenLayers);
        Assert.Equal(32, c.NumAttentionHeads);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(256, c.KeyValueDim);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(2048, c.MaxPositionEmbeddings);
        Assert.Equal(32000, c.VocabSize);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.AttentionBias);
        Assert.Equal(1, c.BosTokenId);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Equal("float32", c.TorchDtype); // newer transformers write "dtype"
    }

    [SkippableFact]
    public void ReadsQwen2ConfigsWithImpliedBias()
    {
        foreach (string dir in new[] { "qwen2.5-0.5b", "qwen2.5-0.5b-instruct" })
        {
            var c = HfConfig.Load(TestAssets.Require($"tokenizers/{dir}/config.json"));
            Assert.Equal("qwen2", c.ModelType);
            Assert.Equal(896, c.HiddenSize);
            Assert.Equal(4864, c.IntermediateSize);
            Assert.Equal(24, c.NumHiddenLayers);
            Assert.Equal(14, c.NumAttentionHeads);
            Assert.Equal(2, c.NumKeyValueHeads);
            Assert.Equal(64, c.HeadDim);
            Assert.Equal(1e-6, c.RmsNormEps);
            Assert.Equal(1_000_000.0, c.RopeTheta);
            Assert.Equal(151936, c.VocabSize);
            Assert.True(c.TieWordEmbeddings);
            Assert.True(c.AttentionBias);
            Assert.False(c.OutputBias);
            Assert.Equal(32768, c.SlidingWindow);
            Assert.False(c.UseSlidingWindow);
        }
        Assert.Equal([151645], HfConfig.Load(TestAssets.Require("tokenizers/qwen2.5-0.5b-instruct/config.json")).EosTokenIds);
        Assert.Equal("bfloat16", HfConfig.Load(TestAssets.Require("tokenizers/qwen2.5-0.5b/config.json")).TorchDtype);
    }

    [SkippableFact]
    public void ReadsMistralConfigWithNullSlidingWindow()
    {
        var c = HfConfig.Load(TestAssets.Require("tokenizers/mistral-7b-instruct-v0.3/config.json"));
        Assert.Equal("mistral", c.ModelType);
        Assert.Equal(8, c.NumKeyValueHeads);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(14336, c.IntermediateSize);
        Assert.Equal(32768, c.VocabSize);
        Assert.Null(c.SlidingWindow);
        Assert.Equal("bfloat16", c.TorchDtype);
    }

    private const string Minimal = """
        { "model_type": "llama", "hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
          "num_attention_heads": 8, "vocab_size": 512, "some_future_key": {"x": [1, 2]} }
        """;

    [Fact]
    public void DefaultsApplyAndUnknownKeysAreIgnored()
    {
        var c = HfConfig.Parse(Minimal);
        Assert.Equal(8, c.NumKeyValueHeads);
        Assert.Equal(8, c.HeadDim);
        Assert.Equal(1e-6, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.False(c.AttentionBias);
        Assert.Empty(c.EosTokenIds);
        Assert.Null(c.BosTokenId);
    }

    [Fact]
    public void Llama3RopeScalingAndEosList()
    {
        var c = HfConfig.Parse("""
            { "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
              "rope_theta": 500000.0, "tie_word_embeddings": true, "bos_token_id": 128000,
              "eos_token_id": [128001, 128008, 128009],
              "rope_scaling": { "factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                "original_max_position_embeddings": 8192, "rope_type": "llama3" } }
            """);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        var rs = Assert.IsType<RopeScaling>(c.RopeScaling);
        Assert.True(rs.IsLlama3);
        Assert.Equal(32.0, rs.Factor);
        Assert.Equal(1.0, rs.LowFreqFactor);
        Assert.Equal(4.0, rs.HighFreqFactor);
        Assert.Equal(8192, rs.OriginalMaxPositionEmbeddings);

        // High frequencies (short wavelengths) are kept, low ones divided by the factor.
        double[] inv = [1.0, 1e-5];
        rs.Apply(inv);
        Assert.Equal(1.0, inv[0]);
        Assert.Equal(1e-5 / 32, inv[1], 15);
    }

    [Fact]
    public void LinearScalingUsesOlderTypeKey()
    {
        var c = HfConfig.Parse(Minimal.Replace("\"vocab_size\": 512", "\"vocab_size\": 512, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 4}"));
        Assert.True(c.RopeScaling!.IsLinear);
        double[] inv = [1.0, 0.5];
        c.RopeScaling.Apply(inv);
        Assert.Equal([0.25, 0.125], inv);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    [InlineData("model_type")]
    public void MissingRequiredFieldIsNamedWithFile(string field)
    {
        string json = System.Text.RegularExpressions.Regex.Replace(Minimal, $"\"{field}\": [^,]+,", "");
        var e = Assert.Throws<CheckpointFormatException>(() => HfConfig.Parse(json, "/models/x/config.json"));
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains("/models/x/config.json", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void WrongTypesAndInconsistentHeadsAreClearErrors()
    {
        var e1 = Assert.Throws<CheckpointFormatException>(() => HfConfig.Parse(Minimal.Replace("\"hidden_size\": 64", "\"hidden_size\": \"64\""), "c.json"));
        Assert.Contains("'hidden_size'", e1.Message);
        Assert.Contains("integer", e1.Message);
        var e2 = Assert.Throws<CheckpointFormatException>(() => HfConfig.Parse(Minimal.Replace("\"vocab_size\": 512", "\"vocab_size\": 512, \"num_key_value_heads\": 3"), "c.json"));
        Assert.Contains("num_key_value_heads", e2.Message);
        var e3 = Assert.Throws<CheckpointFormatException>(() => HfConfig.Parse("{ not json", "c.json"));
        Assert.Contains("c.json", e3.Message);
    }

    [Fact]
    public void ToJsonRoundTrips()
    {
        var c = HfConfig.Parse(Minimal) with
        {
            EosTokenIds = [2, 7],
            BosTokenId = 1,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192),
            TieWordEmbeddings = true,
            TorchDtype = "bfloat16",
        };
        var back = HfConfig.Parse(c.ToJson());
        Assert.Equal(c.ToJson(), back.ToJson());
        Assert.Equal([2, 7], back.EosTokenIds);
        Assert.Equal(c.RopeScaling, back.RopeScaling);
    }
}
