using EdgeTune.Adapters;
using EdgeTune.Models.Bert;
using EdgeTune.Training;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>Encoder fine-tuning stopped after some steps and resumed from its checkpoint ends where the uninterrupted run
/// ends: the same losses step by step and the same saved encoder (and head), for both tasks and for LoRA and full.</summary>
public sealed class EncoderResumeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-encresume-" + Guid.NewGuid().ToString("N"));

    public EncoderResumeTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Data(EncoderTask task)
    {
        string[] words = ["cat", "dog", "sun", "rain", "mat", "red", "blue", "big", "small", "wet"];
        string path = Path.Combine(_dir, task == EncoderTask.Embed ? "pairs.jsonl" : "labels.jsonl");
        File.WriteAllLines(path, task == EncoderTask.Embed
            ? words.Select((w, i) => $$"""{"anchor": "the {{w}}", "positive": "a {{words[(i + 3) % words.Length]}} is hot"}""")
            : words.Select((w, i) => $$"""{"text": "the {{w}} sat on a mat", "label": "{{(i % 3 == 0 ? "x" : i % 3 == 1 ? "y" : "z")}}"}"""));
        return path;
    }

    private EncoderJobResult Run(string model, string data, string outDir, EncoderTask task, bool lora, bool resume, int? stopAfter)
    {
        using var cts = new CancellationTokenSource();
        var progress = new Stop(s => { if (s.Event == TrainingEvent.Step && s.Step == stopAfter) cts.Cancel(); });
        var options = new EncoderJobOptions
        {
            Model = model, Data = data, OutputDir = outDir, Resume = resume, HeldOut = 0,
            Recipe = new EncoderFineTuneOptions
            {
                Task = task,
                Lora = lora ? new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["query", "value"], InitSeed = 11 } : null,
                Training = new TrainingOptions { Steps = 6, MicroBatch = 4, SeqLen = 16, LearningRate = 1e-2, WarmupSteps = 2, EvalEvery = 0, CheckpointEvery = 0, Seed = 5 },
            },
        };
        return EncoderFineTuneJob.Run(options, progress, cts.Token);
    }

    private sealed class Stop(Action<TrainingStatus> report) : IProgress<TrainingStatus>
    {
        public void Report(TrainingStatus value) => report(value);
    }

    [Theory]
    [InlineData(EncoderTask.Embed, true)]
    [InlineData(EncoderTask.Embed, false)]
    [InlineData(EncoderTask.Classify, true)]
    [InlineData(EncoderTask.Classify, false)]
    public void StoppedThenResumedEqualsUninterrupted(EncoderTask task, bool lora)
    {
        string model = BertFolderTests.TinyFolder(_dir), data = Data(task);
        string whole = Path.Combine(_dir, "whole"), parts = Path.Combine(_dir, "parts");
        var full = Run(model, data, whole, task, lora, resume: false, stopAfter: null);
        Assert.Equal(TrainingStopReason.Completed, full.Training.Reason);

        var first = Run(model, data, parts, task, lora, resume: false, stopAfter: 3);
        Assert.Equal(TrainingStopReason.Cancelled, first.Training.Reason);
        Assert.Equal(3, first.Training.LastStep);
        var second = Run(model, data, parts, task, lora, resume: true, stopAfter: null);
        Assert.NotNull(second.ResumedFrom);
        Assert.Equal((3, 6), (second.Training.FirstStep, second.Training.LastStep));
        Assert.Equal(full.Training.Losses, first.Training.Losses.Concat(second.Training.Losses));
        Assert.NotNull(full.Predicted);

        // one metrics row per step, none twice
        var steps = File.ReadAllLines(Path.Combine(parts, "metrics.jsonl")).Where(l => l.Contains("\"event\":\"step\"", StringComparison.Ordinal)).ToList();
        Assert.Equal(6, steps.Count);

        foreach (string file in (string[])(task == EncoderTask.Classify ? ["model.safetensors", "classifier.safetensors"] : ["model.safetensors"]))
            Assert.Equal(File.ReadAllBytes(Path.Combine(whole, file)), File.ReadAllBytes(Path.Combine(parts, file)));
    }
}
