using System.CommandLine;
using System.Text.Json;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public sealed class EvalCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-eval-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string ShakespeareSlice(int chars)
    {
        string text = File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"));
        string path = Path.Combine(_dir, "slice.txt");
        File.WriteAllText(path, text[..chars]);
        return path;
    }

    [SkippableFact]
    public void JsonHasFinitePerplexityAboveOne()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string data = ShakespeareSlice(3000);
        var (code, stdout, stderr) = Run("eval", "--model", model, "--tokenizer", tok, "--data", data, "--seq-len", "64", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var r = doc.RootElement;
        Assert.Equal(["loss", "ppl", "tokens", "windows", "seq_len", "model", "data", "seconds"], r.EnumerateObject().Select(p => p.Name));
        Assert.False(string.IsNullOrEmpty(r.GetProperty("model").GetString()));
        Assert.True(r.GetProperty("seconds").GetDouble() >= 0);
        double loss = r.GetProperty("loss").GetDouble(), ppl = r.GetProperty("ppl").GetDouble();
        Assert.True(double.IsFinite(ppl) && ppl > 1, $"ppl {ppl}");
        Assert.Equal(Math.Exp(loss), ppl, 1e-9);
        Assert.True(ppl < 512, $"ppl {ppl} is no better than uniform over the vocabulary");
        long tokens = r.GetProperty("tokens").GetInt64();
        int windows = r.GetProperty("windows").GetInt32();
        Assert.Equal(64, r.GetProperty("seq_len").GetInt32());
        Assert.Equal((tokens + 63) / 64, windows); // every window full but the last
        Assert.Equal(data, r.GetProperty("data").GetString());
    }

    [SkippableFact]
    public void StoriesTextScoresBetterThanShakespeareAndBatchingDoesNotChangeTheLoss()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string stories = Path.Combine(_dir, "story.txt");
        File.WriteAllText(stories, File.ReadAllText(TestAssets.Require("stories260K/expected_greedy.txt")));
        var a = Run("eval", "--model", model, "--tokenizer", tok, "--data", stories, "--seq-len", "32", "--batch", "1", "--json");
        var b = Run("eval", "--model", model, "--tokenizer", tok, "--data", stories, "--seq-len", "32", "--batch", "3", "--json");
        var s = Run("eval", "--model", model, "--tokenizer", tok, "--data", ShakespeareSlice(1500), "--seq-len", "32", "--json");
        Assert.True(a.Code == 0 && b.Code == 0 && s.Code == 0, a.Err + b.Err + s.Err);
        double la = JsonDocument.Parse(a.Out).RootElement.GetProperty("loss").GetDouble();
        double lb = JsonDocument.Parse(b.Out).RootElement.GetProperty("loss").GetDouble();
        double ls = JsonDocument.Parse(s.Out).RootElement.GetProperty("loss").GetDouble();
        Assert.Equal(la, lb, 1e-4);
        // The model's own greedy story is far more predictable to it than Shakespeare.
        Assert.True(la < ls - 1, $"stories {la} vs shakespeare {ls}");
    }

    [SkippableFact]
    public void TextOutputAndMaxTokens()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string data = ShakespeareSlice(2000);
        var (code, stdout, stderr) = Run("eval", "--model", model, "--tokenizer", tok, "--data", data, "--max-tokens", "101");
        Assert.True(code == 0, stderr);
        var parts = stdout.Trim().Split(' ');
        Assert.Equal(["loss", "ppl", "tokens"], new[] { parts[0], parts[2], parts[4] });
        Assert.Equal("100", parts[5]);
        Assert.True(double.Parse(parts[3], System.Globalization.CultureInfo.InvariantCulture) > 1);
    }

    [SkippableFact]
    public void TinyFileAndMissingFile()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string tiny = Path.Combine(_dir, "tiny.txt");
        File.WriteAllText(tiny, "Hi.");
        var t = Run("eval", "--model", model, "--tokenizer", tok, "--data", tiny, "--json");
        Assert.True(t.Code == 0, t.Err);
        Assert.True(JsonDocument.Parse(t.Out).RootElement.GetProperty("tokens").GetInt64() >= 1);
        var m = Run("eval", "--model", model, "--tokenizer", tok, "--data", Path.Combine(_dir, "absent.txt"));
        Assert.NotEqual(0, m.Code);
        Assert.Contains("absent.txt", m.Err);
    }
}
