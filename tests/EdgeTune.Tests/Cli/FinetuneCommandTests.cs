using System.CommandLine;
using System.Globalization;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public class FinetuneCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = EdgeTune.Cli.Program.Run(args, new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private static string RepoSamples()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "samples", "notes.jsonl"))) return Path.Combine(dir.FullName, "samples", "notes.jsonl");
        throw new FileNotFoundException("samples/notes.jsonl not found above the test binaries");
    }

    [Fact]
    public void DemoRunLearnsAndWritesEverything()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-ft-").FullName;
        try
        {
            var (code, stdout, stderr) = Run("finetune", "--data", RepoSamples(), "--steps", "40", "--eval-every", "20", "--out", dir);
            Assert.True(code == 0, stderr + stdout);
            double before = Value(stdout, "validation before: loss ");
            double after = Value(stdout, "validation after:  loss ");
            Assert.True(after < before - 1.0, $"validation loss {before} -> {after}");
            foreach (string f in new[] { "metrics.jsonl", "loss.png", "data_report.json", "model/model.safetensors", "model/config.json" })
                Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing");
            Assert.NotEmpty(Directory.GetDirectories(Path.Combine(dir, "checkpoints")));
            Assert.Contains("sample — ", stdout);
            // The saved demo model carries its byte tokenizer and prompt format: eval loads the folder alone (JSONL, response-only loss).
            var eval = Run("eval", "--model", Path.Combine(dir, "model"), "--data", RepoSamples(), "--seq-len", "128");
            Assert.True(eval.Code == 0, eval.Err);
            Assert.True(Value(eval.Out, "loss ") < before, eval.Out);
        }
        finally { Directory.Delete(dir, true); }
    }

    [SkippableFact]
    public void LoraAdapterSavedByFinetuneLowersEvalLoss()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string text = File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"))[..60000];
        string dir = Directory.CreateTempSubdirectory("edgetune-ft-").FullName;
        try
        {
            string data = Path.Combine(dir, "train.txt");
            File.WriteAllText(data, text);
            var (code, stdout, stderr) = Run("finetune", "--model", model, "--tokenizer", tok, "--data", data, "--method", "lora",
                "--rank", "4", "--steps", "15", "--seq-len", "64", "--batch", "4", "--lr", "3e-3", "--eval-every", "15", "--out", Path.Combine(dir, "run"));
            Assert.True(code == 0, stderr + stdout);
            string adapter = Path.Combine(dir, "run", "adapter");
            Assert.True(File.Exists(Path.Combine(adapter, "adapter_config.json")));
            var plain = Run("eval", "--model", model, "--tokenizer", tok, "--data", data, "--seq-len", "64", "--max-tokens", "3000");
            var tuned = Run("eval", "--model", model, "--tokenizer", tok, "--adapter", adapter, "--data", data, "--seq-len", "64", "--max-tokens", "3000");
            Assert.Equal(0, plain.Code);
            Assert.Equal(0, tuned.Code);
            Assert.True(Value(tuned.Out, "loss ") < Value(plain.Out, "loss ") - 0.3, $"{plain.Out} vs {tuned.Out}");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MissingDataIsAClearError()
    {
        var (code, _, stderr) = Run("finetune", "--data", "/nonexistent/data.jsonl", "--steps", "1", "--out", Path.GetTempPath());
        Assert.NotEqual(0, code);
        Assert.Contains("/nonexistent/data.jsonl", stderr);
    }

    private static double Value(string text, string prefix)
    {
        int i = text.IndexOf(prefix, StringComparison.Ordinal);
        Assert.True(i >= 0, $"'{prefix}' not in output:\n{text}");
        string rest = text[(i + prefix.Length)..];
        return double.Parse(rest[..rest.IndexOfAny([' ', '\n'])], CultureInfo.InvariantCulture);
    }
}
