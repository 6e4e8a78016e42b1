using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Security;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Models;
using EdgeTune.Training;
using EdgeTune.Tests.Training;

namespace EdgeTune.Tests.Security;

/// <summary>An encrypted run that is killed resumes from its encrypted checkpoints exactly as a plain one does, and is
/// refused (untouched) without its key or with another one.</summary>
public sealed class EncryptedResumeTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private TrainingOptions Options(string sub) => new()
    {
        Steps = 8, MicroBatch = 2, SeqLen = 8, GradAccumulation = 2, LearningRate = 3e-3, WarmupSteps = 2,
        EvalEvery = 3, EvalBatches = 2, CheckpointEvery = 2, KeepCheckpoints = 2, OutputDir = _dir.File(sub),
    };

    private static (DecoderModel Model, TokenStreamBatchSource Train, TokenStreamBatchSource Val) Setup()
    {
        var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var data = TrainingTestData.TokenStream(400, 53);
        return (model, new TokenStreamBatchSource(data[..300], shuffle: true, seed: 5), new TokenStreamBatchSource(data[300..]));
    }

    private (List<double> Losses, float[][] Weights) Plain()
    {
        var (model, train, val) = Setup();
        using (model)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options("plain"), val))
        {
            var r = trainer.Run();
            return (r.Losses.ToList(), model.Parameters.Select(p => p.Value.ToFloatArray()).ToArray());
        }
    }

    [Fact]
    public void KilledEncryptedRunResumesBitForBitAndIsRefusedWithoutItsKey()
    {
        var (expected, weights) = Plain();
        using var key = EncryptionKey.Generate();
        string root = _dir.File("enc");
        var losses = new List<double>();

        // first process: stops at step 5 (its last checkpoint is the one a kill after step 5 would leave)
        var (model, train, val) = Setup();
        using (model)
        using (var cts = new CancellationTokenSource())
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), train, Options("enc"), val)
        {
            Files = RunFiles.ForWriting(root, key, 4096),
            Progress = new SyncProgress(s => { if (s.Event == TrainingEvent.Step && s.Step == 5) cts.Cancel(); }),
        })
        {
            var r = trainer.Run(cts.Token);
            Assert.Equal(TrainingStopReason.Cancelled, r.Reason);
            losses.AddRange(r.Losses);
        }
        foreach (string f in Directory.GetFiles(Path.Combine(root, "checkpoints"), "*", SearchOption.AllDirectories))
            Assert.True(EncryptedFile.IsEncrypted(f), f);
        // what the kill leaves: a checkpoint half written under its temporary name, and a newer folder without a manifest
        string ckpts = Path.Combine(root, "checkpoints");
        Directory.CreateDirectory(Path.Combine(ckpts, ".tmp-step-00000006-dead"));
        File.WriteAllBytes(Path.Combine(ckpts, ".tmp-step-00000006-dead", TrainingCheckpoint.WeightsFile), new byte[100]);
        Directory.CreateDirectory(Path.Combine(ckpts, TrainingCheckpoint.FolderName(6)));
        File.WriteAllBytes(Path.Combine(ckpts, TrainingCheckpoint.FolderName(6), TrainingCheckpoint.WeightsFile), new byte[100]);

        // without the key, or with another one, nothing resumes and nothing changes
        var before = Directory.GetFiles(root, "*", SearchOption.AllDirectories).ToDictionary(f => f, File.ReadAllBytes);
        Assert.Throws<EncryptionKeyRequiredException>(() => RunFiles.ForWriting(root, null));
        using (var other = EncryptionKey.Generate()) Assert.Throws<EncryptedFileException>(() => RunFiles.ForWriting(root, other));
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order());
        foreach (var (f, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(f));

        // second process with the key: resumes from step 5 and ends where the plain run did, bit for bit
        var (model2, train2, val2) = Setup();
        using (model2)
        using (var trainer = new Trainer(DelegateTrainableModel.For(model2), train2, Options("enc"), val2) { Files = RunFiles.ForWriting(root, key) })
        {
            string? from = trainer.Resume();
            Assert.EndsWith(TrainingCheckpoint.FolderName(5), from);
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            losses.RemoveRange((int)r.FirstStep, losses.Count - (int)r.FirstStep);
            losses.AddRange(r.Losses);
            Assert.Equal(expected, losses); // exact
            var w = model2.Parameters.Select(p => p.Value.ToFloatArray()).ToArray();
            for (int i = 0; i < weights.Length; i++) Assert.True(weights[i].AsSpan().SequenceEqual(w[i]), $"weights {i} differ");
        }
        foreach (var (_, folder) in TrainingCheckpoint.List(ckpts))
            foreach (string f in Directory.GetFiles(folder)) Assert.True(EncryptedFile.IsEncrypted(f), f);
    }
}
