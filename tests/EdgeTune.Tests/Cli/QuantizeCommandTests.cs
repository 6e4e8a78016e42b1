using EdgeTune.Cli;
using System.CommandLine;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public sealed class QuantizeCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static string Greedy(string model, string? tok = null)
    {
        string[] args = ["generate", "--model", model, "--prompt", "Once upon a time", "--max-new-tokens", "20", "--temperature", "0"];
        if (tok is not null) args = [.. args, "--tokenizer", tok];
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, stderr);
        return stdout;
    }

    [SkippableTheory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("nf4")]
    [InlineData("int8")]
    public void QuantizedStories260KGeneratesAndIsSmaller(string dtype)
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        bool gguf = dtype is "q8_0" or "q4_0";
        string outPath = Path.Combine(_dir, gguf ? $"m-{dtype}.gguf" : $"m-{dtype}");
        var (code, stdout, stderr) = Run("quantize", "--model", model, "--tokenizer", tok, "--dtype", dtype, "--out", outPath);
        Assert.True(code == 0, stderr);
        Assert.Contains("bits/weight", stdout);
        long size = gguf ? new FileInfo(outPath).Length : new FileInfo(Path.Combine(outPath, "model.safetensors")).Length;
        Assert.True(size < new FileInfo(model).Length / 2, $"{dtype}: {size} bytes");
        // the folder carries its tokenizer (tokenizer.bin); the GGUF is given it
        string text = Greedy(outPath, gguf ? tok : null);
        Assert.StartsWith(", there was", text.TrimStart());
    }

    [Fact]
    public void BadInputExitsWithItsCode()
    {
        Assert.Equal(CliErrors.Input, Run("quantize", "--model", Path.Combine(_dir, "missing"), "--dtype", "q4_0", "--out", Path.Combine(_dir, "x.gguf")).Code);
        var (code, _, err) = Run("quantize", "--model", Path.Combine(_dir, "missing"), "--dtype", "q5_k", "--out", Path.Combine(_dir, "x.gguf"));
        Assert.Equal(CliErrors.Usage, code);
        Assert.Contains("q5_k", err);
        Directory.CreateDirectory(Path.Combine(_dir, "afolder"));
        (code, _, err) = Run("quantize", "--model", Path.Combine(_dir, "missing"), "--dtype", "q8_0", "--out", Path.Combine(_dir, "afolder"));
        Assert.Equal(CliErrors.Input, code);
        Assert.Contains("folder", err);
    }
}
