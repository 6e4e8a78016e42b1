using System.CommandLine;
using System.Globalization;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

public class FinetuneCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void BuiltInDemoTeachesTheFactsAndWritesEverything()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-ft-").FullName;
        try
        {
            // No --model, no --data: the embedded stories260K learns the embedded Zog stories (full fine-tuning by default).
            var (code, stdout, stderr) = Run("finetune", "--steps", "40", "--eval-every", "20", "--out", dir);
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("model: built-in stories260K", stderr);
            double before = Value(stdout, "validation before: loss ");
            double after = Value(stdout, "validation after:  loss ");
            Assert.True(after < before - 0.5, $"validation loss {before} -> {after}");
            foreach (string f in new[] { "metrics.jsonl", "loss.png", "data_report.json", "model/model.safetensors", "model/config.json", "model/tokenizer.bin", "model/LICENSE" })
                Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing");
            Assert.NotEmpty(Directory.GetDirectories(Path.Combine(dir, "checkpoints")));
            // Before and after for each demo prompt: the base model does not know Zog, the tuned one does.
            Assert.Contains("sample — Zog is a little\n  before: ", stdout);
            string afterLine = stdout[stdout.IndexOf("sample — Zog likes to eat", StringComparison.Ordinal)..].Split('\n')[2];
            string beforeLine = stdout[stdout.IndexOf("sample — Zog likes to eat", StringComparison.Ordinal)..].Split('\n')[1];
            Assert.StartsWith("  after:  red apples", afterLine);
            Assert.DoesNotContain("red apples", beforeLine);
            Assert.Contains($"try: edgetune generate --model {Path.Combine(dir, "model")} --prompt \"Zog is a little\"", stdout);

            // The saved folder carries its tokenizer: eval and generate load it alone.
            string data = EdgeTune.Models.BuiltInModels.DemoDataPath();
            var eval = Run("eval", "--model", Path.Combine(dir, "model"), "--data", data, "--seq-len", "128");
            Assert.True(eval.Code == 0, eval.Err);
            Assert.True(Value(eval.Out, "loss ") < before, eval.Out);
            var gen = Run("generate", "--model", Path.Combine(dir, "model"), "--prompt", "Zog is a little", "--temperature", "0", "--max-new-tokens", "8");
            Assert.True(gen.Code == 0, gen.Err);
            Assert.Contains("green dragon", gen.Out);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BuiltInLoraRunAlsoSavesAMergedModelThatLoads()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-ft-").FullName;
        try
        {
            var (code, stdout, stderr) = Run("finetune", "--method", "lora", "--rank", "4", "--steps", "3", "--eval-every", "0", "--checkpoint-every", "0", "--out", dir);
            Assert.True(code == 0, stderr + stdout);
            Assert.True(File.Exists(Path.Combine(dir, "adapter", "adapter_config.json")));
            Assert.Contains(EdgeTune.Models.BuiltInModels.Stories260KName, File.ReadAllText(Path.Combine(dir, "adapter", "adapter_config.json")));
            Assert.Contains($"merged model: {Path.Combine(dir, "model")}", stdout);
            using var merged = EdgeTune.Models.ModelLoader.Load(Path.Combine(dir, "model"));
            Assert.Equal(512, merged.RequireTokenizer().VocabSize);
            Assert.Equal(260_032, ((EdgeTune.Models.DecoderModel)merged.Model).Parameters.ElementCount);
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
