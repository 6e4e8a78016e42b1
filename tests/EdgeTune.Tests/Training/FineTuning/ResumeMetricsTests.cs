using System.Text.Json;
using EdgeTune.Training;
using EdgeTune.Training.FineTuning;

namespace EdgeTune.Tests.Training.FineTuning;

/// <summary>A run that dies between checkpoints and is resumed keeps one metrics row per step.</summary>
public sealed class ResumeMetricsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-resume-metrics-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string Notes()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "EdgeTune.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "samples", "notes.jsonl");
    }

    private sealed class SimulatedCrash : Exception
    {
        public SimulatedCrash() : base("simulated crash") { }
    }

    private FineTuneOptions Options(bool resume, Action<IReadOnlyList<EdgeTune.Autograd.Parameter>>? afterStep = null) => new()
    {
        Data = Notes(),
        OutputDir = _dir,
        Training = new() { Steps = 10, SeqLen = 192, MicroBatch = 2, EvalEvery = 3, EvalBatches = 1, CheckpointEvery = 5, WarmupSteps = 1 },
        Resume = resume,
        AfterStep = afterStep,
        SampleTokens = 1,
    };

    private List<(string Event, long Step)> Rows() =>
        File.ReadAllLines(Path.Combine(_dir, "metrics.jsonl")).Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            return (doc.RootElement.GetProperty("event").GetString()!, doc.RootElement.GetProperty("step").GetInt64());
        }).ToList();

    [Fact]
    public async Task ResumeDropsTheRowsAfterTheCheckpointBeforeAppending()
    {
        // First run: checkpoint at step 5, then the process "dies" during step 8 (rows for 6 and 7 are on disk, no checkpoint).
        int steps = 0;
        await Assert.ThrowsAsync<SimulatedCrash>(() => FineTuneJob.RunAsync(Options(false, _ => { if (++steps == 8) throw new SimulatedCrash(); })));
        var crashed = Rows();
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7], crashed.Where(r => r.Event == "step").Select(r => r.Step));
        Assert.Contains(crashed, r => r.Event == "eval" && r.Step == 6); // evaluated after the checkpoint: must go too

        var result = await FineTuneJob.RunAsync(Options(true));
        Assert.Equal(TrainingStopReason.Completed, result.Training.Reason);
        Assert.Equal(5, result.Training.FirstStep);

        var rows = Rows();
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), rows.Where(r => r.Event == "step").Select(r => r.Step));
        var evals = rows.Where(r => r.Event == "eval").Select(r => r.Step).ToList();
        Assert.Equal(evals.Distinct().Order(), evals);
        Assert.Contains(9L, evals);
        // Nothing up to the checkpoint was lost: the first run's rows through step 5 lead the file unchanged.
        Assert.Equal(crashed.TakeWhile(r => r.Step <= 5), rows.Take(crashed.TakeWhile(r => r.Step <= 5).Count()));
        Assert.All(rows.Select(r => r.Step).Zip(rows.Select(r => r.Step).Skip(1)), p => Assert.True(p.First <= p.Second, $"step {p.Second} after {p.First}"));
        Assert.False(File.Exists(Path.Combine(_dir, "metrics.jsonl.tmp")));
    }

    [Fact]
    public void TruncateKeepsRowsThroughTheStepAndDropsATornLine()
    {
        Directory.CreateDirectory(_dir);
        string path = Path.Combine(_dir, "m.jsonl");
        File.WriteAllText(path, "{\"event\":\"step\",\"step\":1}\n{\"event\":\"step\",\"step\":2}\n{\"event\":\"step\",\"step\":3}\n{\"event\":\"st");
        using (var sink = new JsonlMetricsSink(path))
        {
            Assert.Equal(2, sink.TruncateAfterStep(2));
            sink.WriteLine("{\"event\":\"step\",\"step\":3}");
        }
        Assert.Equal(["{\"event\":\"step\",\"step\":1}", "{\"event\":\"step\",\"step\":2}", "{\"event\":\"step\",\"step\":3}"], File.ReadAllLines(path));
        using (var sink = new JsonlMetricsSink(path)) Assert.Equal(3, sink.TruncateAfterStep(null));
        Assert.Equal("", File.ReadAllText(path));
    }
}
