using System.Text.Json;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;
using static EdgeTune.Tests.Formats.Export.ExportTestUtil;

namespace EdgeTune.Tests.Formats.Export;

public class SafetensorsExportTests
{
    [Theory]
    [InlineData("llama", false, false)]
    [InlineData("llama", true, false)]
    [InlineData("qwen2", true, true)]
    [InlineData("qwen2", false, true)]
    public void F32RoundTripGivesIdenticalLogits(string type, bool tied, bool bias)
    {
        using var dir = new TempDir();
        using var model = Random(Config(type, tied, bias), 11);
        string outDir = dir.File("hf");
        ModelExporter.ExportSafetensors(model, outDir);
        using var back = LoadBack(outDir);
        Assert.Equal((model.Config with { TorchDtype = "float32", Architectures = back.Config.Architectures }).ToJson(), back.Config.ToJson());
        Assert.Equal(type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM", Assert.Single(back.Config.Architectures));
        Assert.Equal(tied, back.TiedHead);
        Assert.Equal(RopeStyle.HalfSplit, back.RopeStyle);
        Assert.Equal(Logits(model, Prompt), Logits(back, Prompt));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void InterleavedModelIsPermutedToHfLayout(bool bias)
    {
        using var dir = new TempDir();
        using var model = Random(Config("llama", tied: false, bias: bias), 5, RopeStyle.Interleaved);
        ModelExporter.ExportSafetensors(model, dir.File("hf"));
        using var back = LoadBack(dir.File("hf"));
        Assert.Equal(RopeStyle.HalfSplit, back.RopeStyle);
        Assert.True(MaxAbsDiff(Logits(model, Prompt), Logits(back, Prompt)) <= 1e-5);
        // Without the permutation the same rows under the other RoPE pairing give other logits.
        using var wrong = Random(Config("llama", tied: false, bias: bias), 5, RopeStyle.HalfSplit);
        Assert.True(MaxAbsDiff(Logits(model, Prompt), Logits(wrong, Prompt)) > 1e-3);
    }

    [Theory]
    [InlineData(DType.F16, "float16", 2e-2)]
    [InlineData(DType.BF16, "bfloat16", 1.5e-1)]
    public void HalfPrecisionExportsStayClose(DType dtype, string torch, double tol)
    {
        using var dir = new TempDir();
        using var model = Random(Config("llama", tied: true), 3);
        ModelExporter.ExportSafetensors(model, dir.File("hf"), dtype);
        using (var st = SafeTensorsFile.Open(dir.File("hf/model.safetensors")))
            Assert.All(st.Tensors, t => Assert.Equal(dtype, t.DType));
        using var back = LoadBack(dir.File("hf"));
        Assert.Equal(torch, back.Config.TorchDtype);
        double d = MaxAbsDiff(Logits(model, Prompt), Logits(back, Prompt));
        Assert.InRange(d, 1e-9, tol);
    }

    [Fact]
    public void WritesGenerationConfigAndCopiesTokenizerFiles()
    {
        using var dir = new TempDir();
        string tok = dir.File("src");
        Directory.CreateDirectory(tok);
        File.WriteAllText(Path.Combine(tok, "tokenizer.json"), "{\"x\":1}");
        File.WriteAllText(Path.Combine(tok, "special_tokens_map.json"), "{}");
        File.WriteAllText(Path.Combine(tok, "unrelated.txt"), "no");
        using var model = Random(Config() with { BosTokenId = null, EosTokenIds = [] }, 1);
        var tokenizer = new Llama2cTokenizer(Enumerable.Range(0, 300).Select(i => $"p{i}").ToArray(), new float[300], 4);
        ModelExporter.ExportSafetensors(model, dir.File("out"), tokenizerFolder: tok, tokenizer: tokenizer);
        var files = Directory.GetFiles(dir.File("out")).Select(f => Path.GetFileName(f)!).Order().ToArray();
        Assert.Equal(["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"], files);
        Assert.Equal("{\"x\":1}", File.ReadAllText(dir.File("out/tokenizer.json")));
        using var gen = JsonDocument.Parse(File.ReadAllText(dir.File("out/generation_config.json")));
        Assert.Equal(1, gen.RootElement.GetProperty("bos_token_id").GetInt32());
        Assert.Equal(2, gen.RootElement.GetProperty("eos_token_id").GetInt32());
        Assert.Single(Directory.GetDirectories(dir.Path), d => Path.GetFileName(d) == "out");
        Assert.Equal(2, Directory.GetDirectories(dir.Path).Length); // src and out, no temporary folder left
    }

    [Fact]
    public void FailedExportLeavesTheOldFolderAndNoTemporary()
    {
        using var dir = new TempDir();
        using var model = Random(Config(), 2);
        string outDir = dir.File("hf");
        ModelExporter.ExportSafetensors(model, outDir);
        byte[] before = File.ReadAllBytes(Path.Combine(outDir, "model.safetensors"));
        Assert.Throws<DirectoryNotFoundException>(() => ModelExporter.ExportSafetensors(model, outDir, tokenizerFolder: dir.File("missing")));
        Assert.Throws<ArgumentException>(() => ModelExporter.ExportSafetensors(model, outDir, DType.Q8_0));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")));
        Assert.Equal([outDir], Directory.GetDirectories(dir.Path));
        // Re-exporting over an existing folder replaces it.
        using var other = Random(Config(), 9);
        ModelExporter.ExportSafetensors(other, outDir);
        Assert.NotEqual(before, File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")));
        Assert.Equal([outDir], Directory.GetDirectories(dir.Path));
    }
}
