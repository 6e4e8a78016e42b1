using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;
using EdgeTune.Training;

namespace EdgeTune.Tests.Training;

public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-trainer-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private TrainingOptions Options(string sub) => new()
    {
        Steps = 8, MicroBatch = 2, SeqLen = 8, GradAccumulation = 2, LearningRate = 3e-3, WarmupSteps = 2,
        EvalEvery = 3, EvalBatches = 2, CheckpointEvery = 2, KeepCheckpoints = 2, OutputDir = Path.Combine(_dir, sub),
    };

    private static (DecoderModel Model, TokenStreamBatchSource Train, TokenStreamBatchSource Val) Setup()
    {
        var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var data = TrainingTestData.TokenStream(400, 53);
        return (model, new TokenStreamBatchSource(data[..300], shuffle: true, seed: 5), new TokenStreamBatchSource(data[300..]));
    }

    private (List<double> Losses, float[][] Weights) Uninterrupted(string sub)
    {
        var (model, train, val) = Setup();
        using (model)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options(sub), val))
        {
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            return (r.Losses.ToList(), model.Parameters.Select(p => p.Value.ToFloatArray()).ToArray());
        }
    }

    private (List<double> Losses, float[][] Weights) Interrupted(string sub, int cancelAt, Action? beforeResume = null)
    {
        var losses = new List<double>();
        var (model, train, val) = Setup();
        using (model)
        using (var cts = new CancellationTokenSource())
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options(sub), val)
        { Progress = new SyncProgress(s => { if (s.Event == TrainingEvent.Step && s.Step == cancelAt) cts.Cancel(); }) })
        {
            var r = trainer.Run(cts.Token);
            Assert.Equal(TrainingStopReason.Cancelled, r.Reason);
            Assert.Equal(cancelAt, r.LastStep);
            Assert.EndsWith(TrainingCheckpoint.FolderName(cancelAt), r.LastCheckpoint);
            losses.AddRange(r.Losses);
        }
        beforeResume?.Invoke();
        var (model2, train2, val2) = Setup(); // a fresh process: same seeds, weights come from the checkpoint
        using (model2)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model2), train2, Options(sub), val2))
        {
            string? from = trainer.Resume();
            Assert.NotNull(from);
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            Assert.Equal(trainer.State.Step - r.Losses.Count, r.FirstStep);
            losses.InsertRange(0, Enumerable.Repeat(double.NaN, 0));
            // steps the resumed run repeated (after a fallback to an older checkpoint) replace the first run's tail
            losses.RemoveRange((int)r.FirstStep, losses.Count - (int)r.FirstStep);
            losses.AddRange(r.Losses);
            return (losses, model2.Parameters.Select(p => p.Value.ToFloatArray()).ToArray());
        }
    }

    [Fact]
    public void InterruptedAndResumedRunGivesTheSameLossCurveBitForBit()
    {
        var (expected, weights) = Uninterrupted("a");
        Assert.Equal(8, expected.Count);
        Assert.True(expected[^1] < expected[0], $"loss should fall: {string.Join(", ", expected)}");
        var (actual, weights2) = Interrupted("b", cancelAt: 5);
        Assert.Equal(expected, actual); // exact double equality
        for (int i = 0; i < weights.Length; i++) Assert.True(weights[i].AsSpan().SequenceEqual(weights2[i]), $"weights {i} differ");
    }

    [Fact]
    public void CorruptNewestCheckpointFallsBackToThePreviousOne()
    {
        var (expected, weights) = Uninterrupted("c");
        string ckpts = Path.Combine(_dir, "d", "checkpoints");
        var messages = new List<string>();
        var (actual, weights2) = Interrupted("d", cancelAt: 5, beforeResume: () =>
        {
            // newest is step 5 (cancellation), then step 4; flip a byte of step 5's weights
            var list = TrainingCheckpoint.List(ckpts);
            Assert.Equal([5L, 4L], list.Select(x => x.Step));
            string f = Path.Combine(list[0].Folder, TrainingCheckpoint.WeightsFile);
            var bytes = File.ReadAllBytes(f);
            bytes[^3] ^= 0x40;
            File.WriteAllBytes(f, bytes);
            Assert.Contains("corrupt", TrainingCheckpoint.Verify(list[0].Folder));
            Assert.Equal(list[1].Folder, TrainingCheckpoint.FindLatest(ckpts).Folder);
        });
        Assert.Equal(expected, actual);
        for (int i = 0; i < weights.Length; i++) Assert.True(weights[i].AsSpan().SequenceEqual(weights2[i]), $"weights {i} differ");
    }

    [Fact]
    public void PartialCheckpointWithoutManifestIsSkipped()
    {
        var (model, train, val) = Setup();
        using (model)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options("e") with { Steps = 2 }, val))
            trainer.Run();
        string ckpts = Path.Combine(_dir, "e", "checkpoints");
        Directory.CreateDirectory(Path.Combine(ckpts, ".tmp-step-00000003-abc")); // a crashed write
        string partial = Path.Combine(ckpts, TrainingCheckpoint.FolderName(9));
        Directory.CreateDirectory(partial);
        File.WriteAllText(Path.Combine(partial, TrainingCheckpoint.StateFile), "{}");
        var (folder, rejected) = TrainingCheckpoint.FindLatest(ckpts);
        Assert.EndsWith(TrainingCheckpoint.FolderName(2), folder);
        Assert.Contains("manifest.json is missing", Assert.Single(rejected));
        TrainingCheckpoint.Prune(ckpts, 5);
        Assert.False(Directory.Exists(Path.Combine(ckpts, ".tmp-step-00000003-abc")));
        Assert.Equal([9L, 2L], TrainingCheckpoint.List(ckpts).Select(x => x.Step));
    }

    [Fact]
    public void NonFiniteLossesSkipStepsThenStop()
    {
        var (model, train, _) = Setup();
        using (model)
        {
            int calls = 0;
            var poisoned = new DelegateTrainableModel(model.Parameters, (tape, x, y, b, t) =>
            {
                var loss = model.Loss(tape, x, y, b, t);
                return ++calls >= 3 ? tape.Scale(loss, double.NaN) : loss;
            });
            var statuses = new List<TrainingStatus>();
            var before = model.Parameters[0].Value.ToFloatArray();
            using var trainer = new Trainer(poisoned, train, new TrainingOptions { Steps = 20, MicroBatch = 1, SeqLen = 8, MaxConsecutiveNonFinite = 3 })
            { Progress = new SyncProgress(statuses.Add) };
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.NonFinite, r.Reason);
            Assert.Equal(5, r.LastStep); // two good steps, three skipped
            Assert.Equal(3, statuses.Count(s => s.Event == TrainingEvent.Skipped));
            Assert.Contains("NaN", statuses.First(s => s.Event == TrainingEvent.Skipped).Message);
            Assert.True(double.IsNaN(r.Losses[^1]) && double.IsFinite(r.Losses[1]));
            Assert.All(model.Parameters.Trainable, p => Assert.DoesNotContain(p.Grad!.ToFloatArray(), g => g != 0));
            Assert.False(before.AsSpan().SequenceEqual(model.Parameters[0].Value.ToFloatArray()));
        }
    }

    [Fact]
    public void EarlyStoppingAndMetricsJsonl()
    {
        var (model, train, val) = Setup();
        using (model)
        {
            string metrics = Path.Combine(_dir, "m", "metrics.jsonl");
            using var sink = new JsonlMetricsSink(metrics);
            // a huge learning rate makes validation loss worse after the first evaluation
            var opts = new TrainingOptions { Steps = 30, MicroBatch = 2, SeqLen = 8, LearningRate = 5, WarmupSteps = 0, MaxGradNorm = 0,
                EvalEvery = 1, EvalBatches = 1, EarlyStoppingPatience = 2, Schedule = LrScheduleKind.Constant };
            var predicted = MemoryPlanner.Estimate(MemoryPlanRequest.From(LlamaModelTests.SmallConfig(), opts, FineTuneMethod.Full));
            using var trainer = new Trainer(DelegateTrainableModel.For(model), train, opts, val) { Metrics = sink, PredictedMemory = predicted };
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.EarlyStopped, r.Reason);
            Assert.Equal(predicted.Total, r.PredictedPeakBytes);
            Assert.Contains("(predicted ", r.Message);
            Assert.True(r.PeakRssBytes > 0 && r.PeakTensorBytes > 0);
            Assert.True(r.LastStep < 30);
            var lines = File.ReadAllLines(metrics);
            Assert.Contains(lines, l => l.Contains("\"event\":\"eval\"") && l.Contains("\"perplexity\""));
            Assert.Contains(lines, l => l.Contains("\"event\":\"step\"") && l.Contains("\"grad_norm\""));
            Assert.All(lines, l => System.Text.Json.JsonDocument.Parse(l).Dispose());
        }
    }

    [Fact]
    public void OptionsValidationNamesTheField()
    {
        var e = Assert.Throws<ArgumentException>(() => new TrainingOptions { MicroBatch = 0 }.Validate());
        Assert.Equal("MicroBatch", e.ParamName);
        Assert.Contains("MicroBatch = 0", e.Message);
        Assert.Equal("MinLrRatio", Assert.Throws<ArgumentException>(() => new TrainingOptions { MinLrRatio = 2 }.Validate()).ParamName);
        Assert.Contains("\"grad_accumulation\": 1", new TrainingOptions().ToJson());
    }

    [Fact]
    public void EpochsSetTheStepCount()
    {
        var (model, train, _) = Setup();
        using (model)
        {
            // 300 tokens → 37 windows of 8 → 18 micro-batches of 2 per epoch; 2 epochs / accumulation 3 → 12 steps
            using var trainer = new Trainer(DelegateTrainableModel.For(model), train,
                new TrainingOptions { Epochs = 2, MicroBatch = 2, SeqLen = 8, GradAccumulation = 3 });
            Assert.Equal(12, trainer.TotalSteps);
        }
    }

    [Fact]
    public void SequenceBatcherSourceResumesExactly()
    {
        var rng = new Rng(8);
        var seqs = Enumerable.Range(0, 9).Select(_ =>
        {
            var t = Enumerable.Range(0, 8).Select(_ => rng.NextInt(53)).ToArray();
            return new EdgeTune.Text.Datasets.TrainingSequence(t, [.. t[1..], -100], 1);
        }).ToList();
        var src = new SequenceBatcherSource(new EdgeTune.Text.Datasets.SequenceBatcher(seqs, 2, seed: 4));
        Assert.Equal(5, src.BatchesPerEpoch(2, 8));
        for (int i = 0; i < 7; i++) src.Next(2, 8);
        string pos = src.SavePosition();
        var expected = Enumerable.Range(0, 6).Select(_ => src.Next(2, 8).Tokens).ToList();
        var other = new SequenceBatcherSource(new EdgeTune.Text.Datasets.SequenceBatcher(seqs, 2, seed: 4));
        other.RestorePosition(pos);
        foreach (var e in expected) Assert.Equal(e, other.Next(2, 8).Tokens);
        var first = new SequenceBatcherSource(new EdgeTune.Text.Datasets.SequenceBatcher(seqs, 2, seed: 4)).Next(2, 8).Tokens;
        other.Reset();
        Assert.Equal(first, other.Next(2, 8).Tokens);
        Assert.Throws<ArgumentException>(() => other.Next(4, 8));
    }
}
