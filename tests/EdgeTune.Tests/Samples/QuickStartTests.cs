using EdgeTune.Adapters;
using EdgeTune.Models;
using EdgeTune.Samples;

namespace EdgeTune.Tests.Samples;

/// <summary>samples/QuickStart runs as published: it teaches the built-in model a fact with LoRA and its exports load.</summary>
public class QuickStartTests
{
    [Fact]
    public async Task QuickStartLearnsTheFactAndItsExportsLoad()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-quickstart-").FullName;
        try
        {
            var log = new StringWriter();
            var r = await QuickStart.RunAsync(dir, log);
            Assert.DoesNotContain("red apples", r.Before);
            Assert.StartsWith("red apples", r.After.TrimStart());
            Assert.Contains("before:", log.ToString());

            // The merged GGUF is a standalone model (tokenizer embedded) that gives the tuned answer.
            Assert.True(File.Exists(r.GgufFile));
            using (var gguf = ModelLoader.Load(r.GgufFile))
                Assert.Equal(r.After, await QuickStart.Ask(gguf.Model, gguf.RequireTokenizer(), "Zog likes to eat"));

            // The PEFT adapter applied to a fresh base gives the same answer.
            Assert.True(File.Exists(Path.Combine(r.AdapterFolder, "adapter_model.safetensors")));
            using var base260K = BuiltInModels.Stories260K();
            using var adapter = AdapterFiles.Load(r.AdapterFolder, (DecoderModel)base260K.Model);
            Assert.Equal(r.After, await QuickStart.Ask(base260K.Model, base260K.RequireTokenizer(), "Zog likes to eat"));
        }
        finally { Directory.Delete(dir, true); }
    }
}
