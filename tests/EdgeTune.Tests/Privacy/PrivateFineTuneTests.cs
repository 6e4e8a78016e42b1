using System.CommandLine;
using System.Text.Json;
using EdgeTune.Cli.Commands;
using EdgeTune.Privacy;
using EdgeTune.Training;
using EdgeTune.Training.FineTuning;

namespace EdgeTune.Tests.Privacy;

public sealed class PrivateFineTuneTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-dp-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Rows(string name, int first, int count)
    {
        var lines = File.ReadAllLines(TestAssets.Require("text/tinyshakespeare.txt")).Where(l => l.Length > 20).Skip(first).Take(count);
        string path = Path.Combine(_dir, name);
        File.WriteAllLines(path, lines.Select(l => JsonSerializer.Serialize(new { text = l })));
        return path;
    }

    [SkippableFact]
    public async Task DpLoraRunWithCanariesSpendsAtMostTheTargetEpsilonAndIsAudited()
    {
        string train = Rows("train.jsonl", 0, 60), held = Rows("held.jsonl", 1000, 30);
        string outDir = Path.Combine(_dir, "run");
        var options = new FineTuneOptions
        {
            Model = TestAssets.Require("stories260K/stories260K.bin"),
            Tokenizer = TestAssets.Require("stories260K/tok512.bin"),
            Data = train,
            OutputDir = outDir,
            Lora = new EdgeTune.Adapters.LoraConfig { Rank = 4, Alpha = 8, TargetModules = EdgeTune.Adapters.LoraConfig.AllProjections },
            Training = new() { Steps = 8, SeqLen = 32, MicroBatch = 2, GradAccumulation = 2, EvalEvery = 0, CheckpointEvery = 0, WarmupSteps = 1 },
            DifferentialPrivacy = new DpSgdOptions { TargetEpsilon = 4, Delta = 1e-4, ClipNorm = 0.5, NoiseSeed = 3 },
            Canaries = 2,
            SampleTokens = 2,
        };
        var r = await FineTuneJob.RunAsync(options);
        Assert.NotNull(r.Privacy);
        var dp = r.Privacy!;
        Assert.Equal(8, dp.Steps);
        Assert.Equal(r.Data.TrainSequences + 2 * 5, dp.DatasetSize); // the canary copies are training sequences too
        Assert.Equal(4, dp.LotSize);
        Assert.InRange(dp.Epsilon, 3.9, 4.0);
        Assert.Equal(NoiseCalibration.EpsilonFor(dp.SamplingRate, dp.NoiseMultiplier, 8, 1e-4), dp.Epsilon, 12);
        string last = File.ReadLines(r.MetricsPath).Last(l => l.Contains("\"event\":\"step\""));
        Assert.Equal(dp.Epsilon, JsonDocument.Parse(last).RootElement.GetProperty("dp_epsilon").GetDouble(), 9);
        var set = CanarySet.Load(Path.Combine(outDir, CanarySet.FileName));
        Assert.Equal(2, set.Secrets.Count);

        // audit through the CLI: canaries found beside the adapter, membership AUC in [0, 1]
        var root = new RootCommand { AuditCommand.Create() };
        var output = new StringWriter();
        var error = new StringWriter();
        string json = Path.Combine(_dir, "audit.json");
        int code = root.Parse(["audit", "--model", options.Model, "--tokenizer", options.Tokenizer, "--adapter", Path.Combine(outDir, "adapter"),
            "--data", train, "--heldout", held, "--seq-len", "32", "--candidates", "50", "--json", json]).Invoke(new InvocationConfiguration { Output = output, Error = error });
        Assert.True(code == 0, error.ToString());
        Assert.Contains("canary exposure", output.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(2, doc.RootElement.GetProperty("canaries").GetArrayLength());
        Assert.InRange(doc.RootElement.GetProperty("membership").GetProperty("auc").GetDouble(), 0, 1);
        Assert.Equal(60, doc.RootElement.GetProperty("membership").GetProperty("train_rows").GetInt32());
    }

    [Fact]
    public async Task DpWithFullFineTuningIsRefused()
    {
        string data = Path.Combine(_dir, "d.txt");
        File.WriteAllText(data, "hello world\n");
        var options = new FineTuneOptions { Data = data, OutputDir = Path.Combine(_dir, "run"), Method = FineTuneMethod.Full, DifferentialPrivacy = new DpSgdOptions { TargetEpsilon = 1 } };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => FineTuneJob.RunAsync(options));
        Assert.Contains("LoRA", e.Message);

        var error = new StringWriter();
        int code = EdgeTune.Cli.Program.Run(["finetune", "--data", data, "--dp-epsilon", "2", "--out", Path.Combine(_dir, "cli")], new InvocationConfiguration { Output = new StringWriter(), Error = error });
        Assert.Equal(2, code);
        Assert.Contains("LoRA", error.ToString());
    }
}
