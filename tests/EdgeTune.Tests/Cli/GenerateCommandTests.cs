using System.CommandLine;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public class GenerateCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [SkippableFact]
    public void GreedyStories260KPrintsExactlyRunCText()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string expected = File.ReadAllText(TestAssets.Require("stories260K/expected_greedy.txt"));
        // run.c -n 100 counts the 5 prompt positions (BOS + 4 prompt tokens): 96 new tokens.
        var (code, stdout, stderr) = Run("generate", "--model", model, "--tokenizer", tok,
            "--prompt", "Once upon a time", "--max-new-tokens", "96", "--temperature", "0");
        Assert.True(code == 0, stderr);
        // run.c echoes the prompt; we print only the generated text (both end with a newline).
        Assert.Equal(expected, "Once upon a time" + stdout);
        Assert.Contains("tokens/s", stderr);
    }

    /// <summary>A GGUF model as llama.cpp converts it carries its tokenizer: --model file.gguf needs no --tokenizer.</summary>
    [SkippableFact]
    public void GgufWithEmbeddedTokenizerNeedsNoTokenizerFlag()
    {
        using var dir = new EdgeTune.Tests.Formats.TempDir();
        string model = dir.File("stories260K.gguf");
        EdgeTune.Tests.Formats.GgufTokenizerTests.WriteLlamaCppStories260K(model);
        string expected = File.ReadAllText(TestAssets.Require("stories260K/expected_greedy.txt"));
        var (code, stdout, stderr) = Run("generate", "--model", model,
            "--prompt", "Once upon a time", "--max-new-tokens", "96", "--temperature", "0");
        Assert.True(code == 0, stderr);
        Assert.Equal(expected, "Once upon a time" + stdout);
    }

    [SkippableFact]
    public void StopStringEndsGenerationBeforeIt()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        var (code, stdout, _) = Run("generate", "--model", model, "--tokenizer", tok,
            "--prompt", "Once upon a time", "--max-new-tokens", "96", "--temperature", "0", "--stop", "Lily");
        Assert.Equal(0, code);
        Assert.Equal(", there was a little girl named \n", stdout);
    }

    [Fact]
    public void MissingModelFileIsAClearError()
    {
        var (code, _, stderr) = Run("generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi");
        Assert.NotEqual(0, code);
        Assert.Contains("/nonexistent/model.gguf", stderr);
    }
}
