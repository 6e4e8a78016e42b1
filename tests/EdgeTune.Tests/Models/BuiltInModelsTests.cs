using System.Security.Cryptography;
using EdgeTune.Generation;
using EdgeTune.Models;

namespace EdgeTune.Tests.Models;

public class BuiltInModelsTests
{
    [Fact]
    public void EmbeddedFilesAreKarpathysStories260KWithLicence()
    {
        string dir = BuiltInModels.Stories260KFolder();
        // sha256 of llama2.c's stories260K.bin and tok512.bin (Models/BuiltIn/PROVENANCE.md)
        Assert.Equal("b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696",
            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, BuiltInModels.ModelFile)))));
        Assert.Equal("037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312",
            Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, BuiltInModels.TokenizerFile)))));
        Assert.Contains("Copyright (c) 2023 Andrej Karpathy", File.ReadAllText(Path.Combine(dir, "LICENSE")));
        Assert.Equal(40, File.ReadAllLines(BuiltInModels.DemoDataPath()).Count(l => l.StartsWith("{\"text\":", StringComparison.Ordinal)));
        Assert.Equal(dir, BuiltInModels.Stories260KFolder()); // written once, then reused
    }

    [Fact]
    public async Task LoadsAndContinuesTextLikeLlama2c()
    {
        using var loaded = BuiltInModels.Stories260K();
        var model = Assert.IsType<DecoderModel>(loaded.Model);
        Assert.Equal(260_032, model.Parameters.ElementCount);
        var tok = loaded.RequireTokenizer();
        Assert.Equal(512, tok.VocabSize);
        // llama2.c run.c, -t 0 -i "Once upon a time" (shared/assets/stories260K/expected_greedy.txt)
        string text = await new TextGenerator(model, tok).GenerateAsync("Once upon a time",
            new GenerationOptions(40, SamplingOptions.Greedy, StopIds: loaded.StopIds()));
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", text);
    }
}
