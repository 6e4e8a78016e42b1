using System.CommandLine;
using System.Globalization;
using EdgeTune.Cli.Commands;

namespace EdgeTune.Tests.Cli;

/// <summary><c>finetune --base-dtype</c>: LoRA over a quantized frozen base (QLoRA) from the command line.</summary>
public class QloraCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    private static double Value(string text, string prefix)
    {
        int i = text.IndexOf(prefix, StringComparison.Ordinal);
        Assert.True(i >= 0, $"'{prefix}' not in: {text}");
        string rest = text[(i + prefix.Length)..];
        return double.Parse(rest[..rest.IndexOf(' ')], CultureInfo.InvariantCulture);
    }

    [SkippableFact]
    public void Q4_0BaseTrainsAndSavesAPeftAdapter()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string dir = Directory.CreateTempSubdirectory("edgetune-qlora-").FullName;
        try
        {
            string data = Path.Combine(dir, "train.txt");
            File.WriteAllText(data, File.ReadAllText(TestAssets.Require("text/tinyshakespeare.txt"))[..40000]);
            var (code, stdout, stderr) = Run("finetune", "--model", model, "--tokenizer", tok, "--data", data, "--base-dtype", "q4_0",
                "--rank", "4", "--steps", "12", "--seq-len", "64", "--batch", "4", "--lr", "3e-3", "--eval-every", "12", "--out", Path.Combine(dir, "run"));
            Assert.True(code == 0, stderr + stdout);
            Assert.Contains("QLoRA base: 30 projections quantized to q4_0", stderr);
            Assert.True(Value(stdout, "validation after:  loss ") < Value(stdout, "validation before: loss ") - 0.3, stdout);
            Assert.True(File.Exists(Path.Combine(dir, "run", "adapter", "adapter_model.safetensors")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void QuantizedBaseWithFullFineTuningOrUnknownFormatExitsWith2()
    {
        var (code, _, err) = Run("finetune", "--method", "full", "--base-dtype", "nf4", "--steps", "1");
        Assert.Equal(2, code);
        Assert.Contains("LoRA", err);
        (code, _, err) = Run("finetune", "--method", "lora", "--base-dtype", "q3_k", "--steps", "1");
        Assert.Equal(2, code);
        Assert.Contains("q3_k", err);
    }
}
