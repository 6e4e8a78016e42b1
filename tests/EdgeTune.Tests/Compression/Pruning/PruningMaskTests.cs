using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Compression.Pruning;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;
using EdgeTune.Training;
using EdgeTune.Tests.Training;

namespace EdgeTune.Tests.Compression.Pruning;

public class PruningMaskTests
{
    [Fact]
    public void FromZerosFindsExactlyTheZeroedWeightsOfProjectionsOnly()
    {
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 3, std: 0.1f);
        var up = model.Parameters[LlamaNames.Up(1)];
        up.Value.Span<float>()[5] = 0f;
        up.Value.Span<float>()[17] = 0f;
        model.Embed.Value.Span<float>()[0] = 0f; // not a projection: ignored
        var mask = PruningMask.FromZeros(model.Parameters);
        Assert.Equal(2 * 7, mask.Count);
        Assert.DoesNotContain(LlamaNames.Embed, mask.Names);
        Assert.Equal(2, mask.PrunedCount);
        var keep = mask.Keep(LlamaNames.Up(1));
        Assert.Equal(0, keep[5]);
        Assert.Equal(0, keep[17]);
        Assert.Equal(1, keep[6]);
        Assert.Single(mask.PerTensor, t => t.Pruned == 2);
    }

    [Fact]
    public void ApplyZeroesWeightsAndGradientsOfPrunedElementsOnly()
    {
        var p = new Parameter("model.layers.0.mlp.up_proj.weight", Tensor.From(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3));
        p.Grad!.Span<float>().Fill(7f);
        var mask = new PruningMask();
        mask.Set(p.Name, [1, 0, 1, 0, 0, 1]);
        mask.ApplyToWeights([p]);
        mask.ApplyToGradients([p]);
        Assert.Equal(new float[] { 1, 0, 3, 0, 0, 6 }, p.Value.ToFloatArray());
        Assert.Equal(new float[] { 7, 0, 7, 0, 0, 7 }, p.Grad.ToFloatArray());
        Assert.Equal(0.5, mask.Sparsity);
        var wrong = new PruningMask();
        wrong.Set(p.Name, [1, 0]);
        var e = Assert.Throws<ShapeException>(() => wrong.ApplyToWeights([p]));
        Assert.Contains("up_proj", e.Message);
        p.Dispose();
    }

    [Fact]
    public void MaskStaysFixedDuringTrainingAndLossStillFalls()
    {
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var mask = WeightPruner.Prune(model, new PruningOptions { Sparsity = 0.5 });
        var data = TrainingTestData.TokenStream(600, 53);
        var options = new TrainingOptions { Steps = 30, MicroBatch = 4, SeqLen = 16, LearningRate = 1e-2, WarmupSteps = 2, WeightDecay = 0.1, EvalEvery = 1000, CheckpointEvery = 1000 };
        double before, after;
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), new TokenStreamBatchSource(data, shuffle: true, seed: 5), options)
        { AfterBackward = mask.AfterBackward, AfterStep = mask.AfterStep })
        {
            var r = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, r.Reason);
            before = r.Losses.Take(3).Average();
            after = r.Losses.TakeLast(3).Average();
        }
        Assert.True(after < before - 0.2, $"loss {before} -> {after}");
        long zeros = 0;
        foreach (var name in mask.Names)
        {
            var w = model.Parameters[name].Value.ReadOnlySpan<float>();
            var keep = mask.Keep(name);
            for (int i = 0; i < w.Length; i++)
            {
                if (keep[i] == 0) { Assert.Equal(0f, w[i]); zeros++; }
            }
        }
        Assert.Equal(mask.PrunedCount, zeros);
        Assert.True(zeros > 0);
        // Kept weights did train: the model is not frozen.
        Assert.Equal(mask.PrunedCount, PruningMask.FromZeros(model.Parameters).PrunedCount);
    }

    [Fact]
    public void WithoutTheHooksTrainingRefillsPrunedWeights()
    {
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 21, std: 0.1f, trainable: true);
        var mask = WeightPruner.Prune(model, new PruningOptions { Sparsity = 0.5 });
        var options = new TrainingOptions { Steps = 3, MicroBatch = 2, SeqLen = 16, LearningRate = 1e-2, WarmupSteps = 0, EvalEvery = 1000, CheckpointEvery = 1000 };
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), new TokenStreamBatchSource(TrainingTestData.TokenStream(300, 53)), options)) trainer.Run();
        Assert.True(PruningMask.FromZeros(model.Parameters).PrunedCount < mask.PrunedCount / 10);
    }

    [Fact]
    public void FixZerosHooksCaptureTheZerosAtTheFirstBackward()
    {
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 4, std: 0.1f, trainable: true);
        var expected = WeightPruner.Prune(model, PruningOptions.TwoFour());
        PruningMask? captured = null;
        var (ab, st) = PruningMask.FixZeros(onCreated: m => captured = m);
        var options = new TrainingOptions { Steps = 5, MicroBatch = 2, SeqLen = 16, LearningRate = 1e-2, WarmupSteps = 0, EvalEvery = 1000, CheckpointEvery = 1000 };
        using (var trainer = new Trainer(DelegateTrainableModel.For(model), new TokenStreamBatchSource(TrainingTestData.TokenStream(300, 53)), options) { AfterBackward = ab, AfterStep = st })
            trainer.Run();
        Assert.NotNull(captured);
        Assert.Equal(expected.PrunedCount, captured!.PrunedCount);
        Assert.Equal(expected.PrunedCount, PruningMask.FromZeros(model.Parameters).PrunedCount);
    }
}
