using EdgeTune.Cli;
using System.CommandLine;
using EdgeTune.Adapters;
using EdgeTune.Cli.Commands;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tests.Adapters;
using EdgeTune.Tests.Formats.Export;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Cli;

/// <summary>
/// <c>edgetune export --adapter</c>: the merged model (gguf, safetensors) equals the library's merge after loading the
/// export back; <c>--format lora-gguf</c> writes the adapter alone, which llama.cpp applies on the exported base to give
/// our merged model's logits; misuse is refused with a clear message. Base models are small random HF folders over the
/// 512-id tok512 vocabulary; adapters are saved as fine-tuning runs save them (run/adapter).
/// </summary>
[Collection(LlamaCppCollection.Name)]
public sealed class ExportAdapterCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-export-adapter-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string P(string name) => Path.Combine(_dir, name);

    /// <summary>A random base model of <paramref name="family"/> written as an HF folder, with tok512.bin beside it (into the
    /// temporary folder) as its tokenizer.</summary>
    private string WriteBase(string family, string name, Func<EdgeTune.Formats.HfConfig, EdgeTune.Formats.HfConfig>? edit = null)
    {
        var cfg = LlamaCppFamilyLoraTests.Config(family);
        using var model = LlamaCppFamilyLoraTests.RandomModel(edit?.Invoke(cfg) ?? cfg, 41);
        string dir = P(name);
        ModelExporter.ExportSafetensors(model, dir);
        File.Copy(TestAssets.Require("stories260K/tok512.bin"), Path.Combine(dir, "tok512.bin"));
        return dir;
    }

    /// <summary>Trains nothing: injects <paramref name="config"/> into the base, randomizes B, saves it as a run folder's
    /// adapter/ and returns (run folder, logits of the library's merge of it into the base).</summary>
    private (string Run, float[] Merged) WriteAdapter(string baseDir, LoraConfig config, string name)
    {
        using var loaded = ModelLoader.Load(baseDir);
        var model = (DecoderModel)loaded.Model;
        using var adapter = LoraInjector.Apply(model, config);
        AdapterTestUtil.RandomizeB(adapter, 17, std: 0.2);
        string run = P(name);
        AdapterFiles.Save(adapter, Path.Combine(run, AdapterFiles.RunSubfolder), baseDir);
        adapter.Merge();
        return (run, AdapterTestUtil.Logits(model, LlamaCppFamilyLoraTests.PromptIds));
    }

    [SkippableTheory]
    [InlineData("llama", "safetensors", false)]
    [InlineData("llama", "gguf", false)]
    [InlineData("qwen3", "safetensors", false)]
    [InlineData("qwen3", "gguf", false)]
    [InlineData("phi3", "gguf", false)]
    [InlineData("gemma3_text", "safetensors", false)]
    [InlineData("llama", "gguf", true)]
    [InlineData("qwen3", "safetensors", true)]
    public void MergedExportEqualsTheLibraryMerge(string family, string format, bool dora)
    {
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string baseDir = WriteBase(family, "base");
        var (run, merged) = WriteAdapter(baseDir, LlamaCppFamilyLoraTests.PatternLora with { UseDora = dora }, "run");
        string outPath = P(format == "gguf" ? "merged.gguf" : "merged");
        var (code, stdout, stderr) = Run("export", "--model", baseDir, "--tokenizer", tok, "--adapter", run, "--format", format, "--out", outPath);
        Assert.True(code == 0, stderr);
        Assert.Contains(Path.GetFullPath(outPath), stdout);
        Assert.Contains("merged the adapter into", stderr);
        using var back = ExportTestUtil.LoadBack(outPath);
        Assert.All(back.Projections(), p => Assert.IsType<EdgeTune.Nn.Linear>(p.Layer));
        double d = AdapterTestUtil.MaxAbsDiff(merged, AdapterTestUtil.Logits(back, LlamaCppFamilyLoraTests.PromptIds));
        using var plain = ExportTestUtil.LoadBack(Path.Combine(baseDir));
        double effect = AdapterTestUtil.MaxAbsDiff(merged, AdapterTestUtil.Logits(plain, LlamaCppFamilyLoraTests.PromptIds));
        output.WriteLine($"{family} {format}{(dora ? " DoRA" : "")}: max |Δlogit| export vs library merge {d:E3} (adapter effect {effect:E3})");
        Assert.True(effect > 0.05, $"the adapter should change the logits ({effect:E3})");
        Assert.True(d <= 1e-5, $"{family} {format}: max |Δlogit| {d:E3} exceeds 1e-5");
    }

    [SkippableTheory]
    [InlineData("llama", false)]
    [InlineData("qwen3", false)]
    [InlineData("llama", true)]
    [InlineData("qwen3", true)]
    public void LoraGgufAppliedByLlamaCppEqualsOurMergedModel(string family, bool perModuleRanks)
    {
        string tok = TestAssets.Require("stories260K/tok512.bin");
        LlamaCpp.RequireNative();
        string baseDir = WriteBase(family, "base");
        var (run, merged) = WriteAdapter(baseDir, perModuleRanks ? LlamaCppFamilyLoraTests.PatternLora : LlamaCppFamilyLoraTests.Lora, "run");
        string baseGguf = P("base.gguf"), loraGguf = P("out/lora.gguf");
        var b = Run("export", "--model", baseDir, "--tokenizer", tok, "--format", "gguf", "--out", baseGguf);
        Assert.True(b.Code == 0, b.Err);
        var (code, stdout, stderr) = Run("export", "--model", baseDir, "--adapter", Path.Combine(run, "adapter"), "--format", "lora-gguf", "--out", loraGguf);
        Assert.True(code == 0, stderr);
        Assert.Contains($"{new FileInfo(loraGguf).Length} bytes", stdout);
        using (var g = EdgeTune.Formats.GgufFile.Open(loraGguf))
        {
            Assert.Equal("adapter", g.GetMetadata("general.type").AsString());
            Assert.DoesNotContain(g.Tensors, t => !t.Name.EndsWith(".lora_a", StringComparison.Ordinal) && !t.Name.EndsWith(".lora_b", StringComparison.Ordinal));
        }
        float[] theirs = LlamaCpp.Logits(baseGguf, LlamaCppFamilyLoraTests.PromptIds, 512, loraGguf);
        double d = AdapterTestUtil.MaxAbsDiff(merged, theirs);
        output.WriteLine($"{family}{(perModuleRanks ? " per-module r/α" : "")}: max |Δlogit| llama.cpp base+LoRA vs our merged {d:E3}");
        Assert.True(d <= 1e-4, $"{family}: max |Δlogit| {d:E3} exceeds 1e-4");
    }

    [Fact]
    public void LoraGgufWithoutAnAdapterIsRefused()
    {
        string outPath = P("x.gguf");
        var (code, stdout, stderr) = Run("export", "--model", "/nonexistent/m", "--format", "lora-gguf", "--out", outPath);
        Assert.Equal(2, code);
        Assert.Contains("--format lora-gguf writes an adapter alone", stderr);
        Assert.Contains("--adapter", stderr);
        Assert.Equal("", stdout);
        Assert.False(File.Exists(outPath));
        var f16 = Run("export", "--model", "/nonexistent/m", "--adapter", _dir, "--format", "lora-gguf", "--dtype", "f16", "--out", outPath);
        Assert.Equal(2, f16.Code);
        Assert.Contains("lora-gguf writes F32", f16.Err);
    }

    [SkippableFact]
    public void AnAdapterForAnotherModelShapeIsRefused()
    {
        string baseDir = WriteBase("llama", "base");
        string otherBase = WriteBase("llama", "other", c => c with { HiddenSize = 40 });
        var (run, _) = WriteAdapter(otherBase, LlamaCppFamilyLoraTests.Lora, "run");
        foreach (string format in new[] { "safetensors", "lora-gguf" })
        {
            string outPath = P("out-" + format);
            var (code, stdout, stderr) = Run("export", "--model", baseDir, "--adapter", run, "--format", format, "--out", outPath);
            output.WriteLine(stderr);
            Assert.Equal(CliErrors.Model, code);
            Assert.Contains("does not fit the model", stderr);
            Assert.Contains("hidden 32", stderr);
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", stderr); // the first tensor whose shape differs
            Assert.Contains("[4, 40]", stderr);
            Assert.Equal("", stdout);
            Assert.False(Path.Exists(outPath));
        }
        // and one for another family's projections (Phi-3's fused qkv_proj) names target_modules
        string phi = WriteBase("phi3", "phi");
        var (phiRun, _) = WriteAdapter(phi, LlamaCppFamilyLoraTests.Lora with { TargetModules = ["qkv_proj"] }, "phirun");
        var r = Run("export", "--model", baseDir, "--adapter", phiRun, "--format", "lora-gguf", "--out", P("phi.gguf"));
        output.WriteLine(r.Err);
        Assert.Equal(CliErrors.Model, r.Code);
        Assert.Contains("target_modules", r.Err);
        var missing = Run("export", "--model", baseDir, "--adapter", P("nowhere"), "--format", "safetensors", "--out", P("nowhere-out"));
        Assert.Equal(CliErrors.Input, missing.Code);
        Assert.Contains("does not exist", missing.Err);
    }

    [SkippableFact]
    public void DoraToLoraGgufIsRefusedPointingAtTheMergedExport()
    {
        string baseDir = WriteBase("llama", "base");
        var (run, _) = WriteAdapter(baseDir, LlamaCppFamilyLoraTests.Lora with { UseDora = true }, "run");
        string outPath = P("dora.gguf");
        var (code, stdout, stderr) = Run("export", "--model", baseDir, "--adapter", run, "--format", "lora-gguf", "--out", outPath);
        output.WriteLine(stderr);
        Assert.Equal(CliErrors.Model, code);
        Assert.Contains("is DoRA", stderr);
        Assert.Contains("--format gguf", stderr);
        Assert.Equal("", stdout);
        Assert.False(File.Exists(outPath));
    }
}
