using EdgeTune.Cli;
using System.CommandLine;
using EdgeTune.Cli.Commands;
using EdgeTune.Compression.Pruning;
using EdgeTune.Models;

namespace EdgeTune.Tests.Cli;

public sealed class PruneCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-prunecli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string Slice(int chars)
    {
        string path = Path.Combine(_dir, $"slice{chars}.txt");
        File.WriteAllText(path, File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"))[..chars]);
        return path;
    }

    [SkippableFact]
    public void MagnitudePruningSavesAModelThatEvalReadsWithItsTokenizer()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string outDir = Path.Combine(_dir, "mag");
        var (code, stdout, stderr) = Run("prune", "--model", model, "--tokenizer", tok, "--method", "magnitude", "--sparsity", "0.5", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("layer  4: q 50.0%", stdout);
        Assert.Contains("(50.00%)", stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "tokenizer.bin")));
        var e = Run("eval", "--model", outDir, "--data", Slice(2000), "--seq-len", "64");
        Assert.True(e.Code == 0, e.Err);
        Assert.StartsWith("loss ", e.Out);
        using var loaded = ModelLoader.Load(outDir);
        var (_, total) = PrunableWeights.Measure((DecoderModel)loaded.Model);
        Assert.Equal(0.5, total.Sparsity, 3);
    }

    [SkippableFact]
    public void StructuredPruningWritesASmallerConfig()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string outDir = Path.Combine(_dir, "struct");
        var (code, stdout, stderr) = Run("prune", "--model", model, "--tokenizer", tok, "--method", "structured", "--heads", "0.25", "--mlp", "0.25",
            "--calibration", Slice(3000), "--calibration-tokens", "500", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("heads 8 -> 6 (kv 4 -> 3", stdout);
        using var loaded = ModelLoader.Load(outDir);
        Assert.Equal(6, loaded.Config.NumAttentionHeads);
        Assert.Equal(3, loaded.Config.NumKeyValueHeads);
        Assert.Equal(172 - 43, loaded.Config.IntermediateSize);
        var e = Run("eval", "--model", outDir, "--data", Slice(2000), "--seq-len", "64");
        Assert.True(e.Code == 0, e.Err);
    }

    [SkippableFact]
    public void RecoveryKeepsTheTwoFourPatternAndLowersTheLoss()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string outDir = Path.Combine(_dir, "rec");
        string data = Slice(20000);
        var (code, stdout, stderr) = Run("prune", "--model", model, "--tokenizer", tok, "--method", "wanda-2:4", "--calibration", data,
            "--calibration-tokens", "400", "--recover-steps", "6", "--data", data, "--batch", "2", "--seq-len", "64", "--lr", "2e-3", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("recovery validation after", stdout);
        double Ppl(string prefix) => double.Parse(stdout.Split('\n').First(l => l.StartsWith(prefix, StringComparison.Ordinal)).Split("ppl ")[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Ppl("recovery validation after") < Ppl("recovery validation before"), stdout);
        Assert.False(Directory.Exists(Path.Combine(outDir, "recovery", "model")));
        using var loaded = ModelLoader.Load(outDir);
        foreach (var p in ((DecoderModel)loaded.Model).Parameters.Where(p => PrunableWeights.IsProjectionWeight(p.Name)))
        {
            var w = p.Value.ToFloatArray();
            for (int g = 0; g < w.Length; g += 4)
                Assert.True(w.Skip(g).Take(4).Count(f => f == 0f) >= 2, $"{p.Name} group {g / 4} lost its 2:4 zeros");
        }
    }

    [SkippableTheory]
    [InlineData("--method", "random", CliErrors.Usage)]
    [InlineData("--sparsity", "1.5", CliErrors.Usage)]
    [InlineData("--method", "wanda", CliErrors.Usage)]
    [InlineData("--recover-steps", "5", CliErrors.Usage)]
    [InlineData("--heads", "-0.1", CliErrors.Usage)]
    [InlineData("--scope", "everything", CliErrors.Usage)]
    [InlineData("--calibration", "/no/such/file.txt", CliErrors.Input)]
    public void BadInputIsAUsageOrInputError(string flag, string value, int expected)
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        var (code, _, stderr) = Run("prune", "--model", model, flag, value, "--out", Path.Combine(_dir, "bad"));
        Assert.Equal(expected, code);
        Assert.StartsWith("edgetune prune: ", stderr);
        Assert.False(Directory.Exists(Path.Combine(_dir, "bad")));
    }

    [Fact]
    public void MissingModelIsAnInputError()
    {
        var (code, _, stderr) = Run("prune", "--model", Path.Combine(_dir, "nothing-here"), "--out", Path.Combine(_dir, "o"));
        Assert.Equal(CliErrors.Input, code);
        Assert.Contains("nothing-here", stderr);
    }
}
