using System.CommandLine;
using EdgeTune.Cli.Commands;
using EdgeTune.Models;

namespace EdgeTune.Tests.Cli;

public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static string Greedy(string model, string tok)
    {
        var (code, stdout, stderr) = Run("generate", "--model", model, "--tokenizer", tok,
            "--prompt", "Once upon a time", "--max-new-tokens", "40", "--temperature", "0");
        Assert.True(code == 0, stderr);
        return stdout;
    }

    [SkippableFact]
    public void SafetensorsF32RoundTripGivesTheSameGreedyText()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string outDir = Path.Combine(_dir, "hf");
        var (code, stdout, stderr) = Run("export", "--model", model, "--tokenizer", tok, "--format", "safetensors", "--dtype", "f32", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(outDir, "config.json")));
        long size = Directory.EnumerateFiles(outDir).Sum(f => new FileInfo(f).Length);
        Assert.Contains(Path.GetFullPath(outDir), stdout);
        Assert.Contains($"{size} bytes", stdout);

        using (var reloaded = ModelLoader.Load(outDir, tok))
            Assert.Equal(512, reloaded.Config.VocabSize);
        string expected = Greedy(model, tok);
        Assert.True(expected.Length > 20);
        Assert.Equal(expected, Greedy(outDir, tok));
    }

    [SkippableFact]
    public void GgufQ8IsSmallerThanF32AndStillGenerates()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string f32 = Path.Combine(_dir, "s-f32.gguf"), q8 = Path.Combine(_dir, "sub", "s-q8.gguf");
        var a = Run("export", "--model", model, "--tokenizer", tok, "--format", "gguf", "--dtype", "f32", "--out", f32);
        Assert.True(a.Code == 0, a.Err);
        var b = Run("export", "--model", model, "--tokenizer", tok, "--format", "gguf", "--dtype", "q8_0", "--out", q8);
        Assert.True(b.Code == 0, b.Err);
        Assert.Contains($"{new FileInfo(q8).Length} bytes", b.Out);
        Assert.True(new FileInfo(q8).Length < new FileInfo(f32).Length * 0.6, $"q8_0 {new FileInfo(q8).Length} vs f32 {new FileInfo(f32).Length}");
        // f32 GGUF is exact, with the tokenizer named or with the one the export embedded.
        var g = Run("generate", "--model", f32, "--tokenizer", tok, "--prompt", "Once upon a time", "--max-new-tokens", "40", "--temperature", "0");
        Assert.True(g.Code == 0, g.Err);
        Assert.Equal(Greedy(model, tok), g.Out);
        var embedded = Run("generate", "--model", f32, "--prompt", "Once upon a time", "--max-new-tokens", "40", "--temperature", "0");
        Assert.True(embedded.Code == 0, embedded.Err);
        Assert.Equal(g.Out, embedded.Out);
        var q = Run("generate", "--model", q8, "--tokenizer", tok, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--temperature", "0");
        Assert.True(q.Code == 0, q.Err);
        Assert.True(q.Out.Trim().Length > 10, q.Out);
    }

    [Theory]
    [InlineData("gguf", "bf16", "bf16 is for --format safetensors")]
    [InlineData("safetensors", "q8_0", "q8_0 (block-quantized) is for --format gguf")]
    [InlineData("safetensors", "q4_0", "q4_0 (block-quantized) is for --format gguf")]
    public void BadFormatDTypeCombinationsAreRefused(string format, string dtype, string message)
    {
        string outPath = Path.Combine(_dir, "never");
        var (code, stdout, stderr) = Run("export", "--model", "/nonexistent/m.bin", "--format", format, "--dtype", dtype, "--out", outPath);
        Assert.NotEqual(0, code);
        Assert.Contains(message, stderr);
        Assert.Equal("", stdout);
        Assert.False(Path.Exists(outPath));
    }

    [Fact]
    public void UnknownDTypeIsAParseError()
    {
        var (code, _, stderr) = Run("export", "--model", "m", "--format", "gguf", "--dtype", "q5_k", "--out", Path.Combine(_dir, "x.gguf"));
        Assert.NotEqual(0, code);
        Assert.Contains("q5_k", stderr);
    }

    [Fact]
    public void ValidateAcceptsEveryLegalPair()
    {
        foreach (string d in new[] { "f32", "f16", "q8_0", "q4_0" }) Assert.Null(ExportCommand.Validate("gguf", d));
        foreach (string d in new[] { "f32", "f16", "bf16" }) Assert.Null(ExportCommand.Validate("safetensors", d));
        foreach (string d in new[] { "f32", "int8", "int4" }) Assert.Null(ExportCommand.Validate("onnx", d));
        Assert.NotNull(ExportCommand.Validate("onnx", "q8_0"));
        Assert.NotNull(ExportCommand.Validate("tflite", "f32"));
    }
}
