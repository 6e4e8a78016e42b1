using System.CommandLine;
using System.Text.Json;
using EdgeTune.Text;

namespace EdgeTune.Tests.Cli;

/// <summary><c>--config run.json</c>: built-in defaults &lt; the file &lt; flags, errors as user errors, and the resolved
/// options written into a run folder.</summary>
public sealed class RunConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private string ByteTokenizerFolder()
    {
        string dir = Path.Combine(_dir, "tok");
        Directory.CreateDirectory(dir);
        ByteTokenizer.WriteMarker(dir);
        return dir;
    }

    [Fact]
    public void FileSettingsApplyAndFlagsWin()
    {
        string tok = ByteTokenizerFolder();
        string cfg = Write("tok.json", $$"""{ "tokenizer": {{JsonSerializer.Serialize(tok)}}, "json": true, "text": ["ab", "c"] }""");
        var fromFile = Run("tokenize", "--config", cfg);
        Assert.True(fromFile.Code == 0, fromFile.Err);
        var lines = fromFile.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length); // both texts of the file, as JSON lines
        Assert.All(lines, l => Assert.StartsWith("{\"ids\":", l));

        // A flag replaces the file's setting of the same option (texts), the others still come from the file.
        var flagged = Run("tokenize", "--config", cfg, "--text", "xyz");
        Assert.True(flagged.Code == 0, flagged.Err);
        var one = Assert.Single(flagged.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var doc = JsonDocument.Parse(one);
        Assert.Contains(doc.RootElement.GetProperty("ids").EnumerateArray(), e => e.GetInt32() == 'x');
        Assert.DoesNotContain(doc.RootElement.GetProperty("ids").EnumerateArray(), e => e.GetInt32() == 'a');
    }

    [Fact]
    public void BadConfigFilesAreUserErrorsNamingTheFile()
    {
        string tok = ByteTokenizerFolder();
        var missing = Run("tokenize", "--config", Path.Combine(_dir, "nope.json"), "--tokenizer", tok, "--text", "a");
        Assert.Equal(3, missing.Code);
        Assert.Contains("nope.json' does not exist", missing.Err);

        var unknown = Run("tokenize", "--config", Write("u.json", """{ "temperature": 0.5 }"""), "--tokenizer", tok, "--text", "a");
        Assert.Equal(2, unknown.Code);
        Assert.Contains("has no option 'temperature'", unknown.Err);
        Assert.DoesNotContain("Unhandled exception", unknown.Err);

        var notJson = Run("tokenize", "--config", Write("bad.json", "{ steps: "), "--tokenizer", tok, "--text", "a");
        Assert.Equal(3, notJson.Code);
        Assert.Contains("is not valid JSON", notJson.Err);

        var badValue = Run("tokenize", "--config", Write("v.json", """{ "json": "maybe" }"""), "--tokenizer", tok, "--text", "a");
        Assert.Equal(2, badValue.Code);
        Assert.Contains("'json' must be true or false", badValue.Err);
    }

    [Fact]
    public void FinetuneWritesItsResolvedOptionsIntoTheRunFolder()
    {
        string outDir = Path.Combine(_dir, "run");
        string cfg = Write("run.json", """{ "steps": 7, "max_memory": "3GB", "--rank": 4, "data": "from-file.jsonl" }""");
        // The data file does not exist, so the run stops at once (exit 3) - after the options were recorded.
        var r = Run("finetune", "--config", cfg, "--data", Path.Combine(_dir, "missing.jsonl"), "--out", outDir);
        Assert.Equal(3, r.Code);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "options.json")));
        Assert.Equal("finetune", doc.RootElement.GetProperty("verb").GetString());
        var o = doc.RootElement.GetProperty("options");
        Assert.Equal(7, o.GetProperty("steps").GetInt32());                                  // file
        Assert.Equal(4, o.GetProperty("rank").GetInt32());                                   // file
        Assert.Equal("3GB", o.GetProperty("max_memory").GetString());                         // file
        Assert.Equal(Path.Combine(_dir, "missing.jsonl"), o.GetProperty("data").GetString()); // flag over file
        Assert.Equal(outDir, o.GetProperty("out").GetString());
        Assert.False(o.GetProperty("resume").GetBoolean());                                  // built-in default
    }
}
