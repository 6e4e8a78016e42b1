using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Training;

public class MemoryPlannerTests(ITestOutputHelper output)
{
    private static HfConfig Config() => new()
    {
        ModelType = "llama", HiddenSize = 64, IntermediateSize = 172, NumHiddenLayers = 4, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 301, RmsNormEps = 1e-5, RopeTheta = 10000,
        MaxPositionEmbeddings = 128, TieWordEmbeddings = true,
    };

    private static long MeasureFullStep(HfConfig cfg, int b, int t, bool checkpointing)
    {
        using var scope = TensorMemory.Track();
        using (var model = DecoderModel.CreateRandom(cfg, seed: 3, std: 0.05f, trainable: true))
        using (var opt = new AdamW(model.Parameters))
        {
            model.ActivationCheckpointing = checkpointing;
            var rng = new Rng(4);
            var tokens = new int[b * t];
            var targets = new int[b * t];
            for (int i = 0; i < tokens.Length; i++) { tokens[i] = rng.NextInt(cfg.VocabSize); targets[i] = rng.NextInt(cfg.VocabSize); }
            using (var tape = new Tape()) tape.Backward(model.Loss(tape, tokens, targets, b, t));
            opt.Step();
        }
        Assert.Equal(0, scope.LiveBytes);
        return scope.PeakBytes;
    }

    [Theory]
    [InlineData(false, 4, 64)]
    [InlineData(true, 4, 64)]
    [InlineData(false, 1, 17)]
    public void FullFineTuningPredictionIsWithin30PercentOfMeasuredTensorBytes(bool checkpointing, int b, int t)
    {
        var cfg = Config();
        long measured = MeasureFullStep(cfg, b, t, checkpointing);
        var e = MemoryPlanner.Estimate(new MemoryPlanRequest
        { Model = cfg, Method = FineTuneMethod.Full, MicroBatch = b, SeqLen = t, ActivationCheckpointing = checkpointing });
        output.WriteLine($"checkpointing {checkpointing} B {b} T {t}: predicted {e.TensorBytes} measured {measured} ({(double)e.TensorBytes / measured:F3}); {e}");
        Assert.InRange((double)e.TensorBytes / measured, 0.7, 1.3);
    }

    [Fact]
    public void CheckpointingPredictsFewerActivationBytes()
    {
        var r = new MemoryPlanRequest { Model = Config(), Method = FineTuneMethod.Full, MicroBatch = 8, SeqLen = 128 };
        var off = MemoryPlanner.Estimate(r);
        var on = MemoryPlanner.Estimate(r with { ActivationCheckpointing = true });
        Assert.True(on.Activations * 2 < off.Activations, $"{on.Activations} vs {off.Activations}");
        Assert.Equal(off.Weights, on.Weights);
    }

    [Fact]
    public void LoraTrainsFarFewerParameters()
    {
        var full = MemoryPlanner.Estimate(new MemoryPlanRequest { Model = Config(), Method = FineTuneMethod.Full });
        var lora = MemoryPlanner.Estimate(new MemoryPlanRequest { Model = Config(), Method = FineTuneMethod.Lora, LoraRank = 4, LoraTargets = ["q_proj", "v_proj"] });
        // q: 4·(64+64), v: 4·(64+32) per layer, 4 layers, F32
        Assert.Equal(4L * (4 * (64 + 64) + 4 * (64 + 32)) * 4, lora.Gradients);
        Assert.Equal(2 * lora.Gradients, lora.OptimizerState);
        Assert.True(lora.Gradients * 10 < full.Gradients);
    }

    [Fact]
    public void PlanReducesMicroBatchThenCheckpointsKeepingTheEffectiveBatch()
    {
        var r = new MemoryPlanRequest { Model = Config(), Method = FineTuneMethod.Full, MicroBatch = 16, SeqLen = 128, RuntimeBytes = 0, Threads = 2 };
        var all = MemoryPlanner.Estimate(r);
        var fit = MemoryPlanner.Plan(r, all.Total);
        Assert.True(fit.Fits);
        Assert.Empty(fit.Changes);

        var mb1ckpt = MemoryPlanner.Estimate(r with { MicroBatch = 1, GradAccumulation = 16, ActivationCheckpointing = true });
        var plan = MemoryPlanner.Plan(r, mb1ckpt.Total + 1);
        Assert.True(plan.Fits, plan.Reason);
        Assert.Equal(16, plan.Request.EffectiveBatch);
        Assert.True(plan.Request.MicroBatch < 16);
        Assert.True(plan.Estimate.Total <= mb1ckpt.Total + 1);
        Assert.Contains(plan.Changes, c => c.StartsWith("micro-batch 16 → 8", StringComparison.Ordinal));

        var applied = plan.Request.ApplyTo(new TrainingOptions { MicroBatch = 16 });
        Assert.Equal((plan.Request.MicroBatch, plan.Request.GradAccumulation, plan.Request.ActivationCheckpointing), (applied.MicroBatch, applied.GradAccumulation, applied.ActivationCheckpointing));

        var refused = MemoryPlanner.Plan(r, all.Weights / 2);
        Assert.False(refused.Fits);
        Assert.Contains("the biggest part is", refused.Reason);
        Assert.Equal(1, refused.Request.MicroBatch);
        Assert.True(refused.Request.ActivationCheckpointing);
    }

    [Theory]
    [InlineData("2GB", 2_000_000_000L)]
    [InlineData("512 MB", 512_000_000L)]
    [InlineData("1.5GiB", 1_610_612_736L)]
    [InlineData("4096", 4096L)]
    public void ParsesSizes(string text, long bytes) => Assert.Equal(bytes, MemoryPlanner.ParseBytes(text));

    [Fact]
    public void PeakRssIsReadable() => Assert.True(ProcessMemory.PeakRssBytes() >= ProcessMemory.RssBytes() / 2);
}
