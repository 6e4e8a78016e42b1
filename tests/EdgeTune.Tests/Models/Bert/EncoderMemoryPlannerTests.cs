using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Models.Bert;
using EdgeTune.Tensors;
using EdgeTune.Training;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>The memory planner on encoders: its estimate (the encoder's own block run shape-only) against the native tensor
/// peak measured over one real training step (forward, backward, AdamW), within the same ±30% the decoder planner is held to.</summary>
public sealed class EncoderMemoryPlannerTests(ITestOutputHelper output)
{
    private static readonly BertConfig Config = new(301, 64, 3, 4, 176, 64, 2);

    private static long MeasureStep(EncoderTask task, bool lora, int microBatch, int t)
    {
        using var scope = TensorMemory.Track();
        using (var encoder = BertEncoder.CreateRandom(Config, seed: 5, std: 0.05f, trainable: !lora))
        {
            var adapter = lora ? LoraInjector.Apply(encoder, new LoraConfig { Rank = 8, Alpha = 16, TargetModules = ["query", "key", "value", "dense"] }) : null;
            var head = task == EncoderTask.Classify ? EncoderLosses.CreateClassifier(encoder, 3, 7) : null;
            var trained = (adapter?.Parameters ?? (IEnumerable<Parameter>)encoder.Parameters).Concat(head?.Parameters ?? []).ToList();
            using (var opt = new AdamW(trained))
            {
                int rows = task == EncoderTask.Embed ? 2 * microBatch : microBatch;
                var rng = new Rng(9);
                var ids = new int[rows * t];
                var mask = new int[rows * t];
                for (int r = 0; r < rows; r++)
                {
                    int len = t - r % 3; // some padding
                    for (int i = 0; i < t; i++) (ids[r * t + i], mask[r * t + i]) = i < len ? (1 + rng.NextInt(Config.VocabSize - 1), 1) : (0, 0);
                }
                var batch = new BertBatch(ids, mask, new int[ids.Length], rows, t);
                using (var tape = new Tape())
                    tape.Backward(task == EncoderTask.Embed ? EncoderLosses.Contrastive(tape, encoder, batch)
                        : EncoderLosses.Classification(tape, encoder, head!, batch, Enumerable.Range(0, rows).Select(r => r % 3).ToArray()));
                opt.Step();
            }
            foreach (var p in head?.Parameters ?? []) p.Dispose();
            adapter?.Dispose();
        }
        Assert.Equal(0, scope.LiveBytes);
        return scope.PeakBytes;
    }

    [Theory]
    [InlineData(EncoderTask.Embed, false, 4, 32)]
    [InlineData(EncoderTask.Embed, true, 4, 32)]
    [InlineData(EncoderTask.Classify, false, 6, 48)]
    [InlineData(EncoderTask.Classify, true, 3, 17)]
    public void PredictionIsWithin30PercentOfMeasuredTensorBytes(EncoderTask task, bool lora, int microBatch, int t)
    {
        long measured = MeasureStep(task, lora, microBatch, t);
        var e = MemoryPlanner.Estimate(new EncoderMemoryPlanRequest
        {
            Model = Config, Task = task, Classes = 3, Method = lora ? FineTuneMethod.Lora : FineTuneMethod.Full, LoraRank = 8, MicroBatch = microBatch, SeqLen = t,
        });
        output.WriteLine($"{task} lora {lora} batch {microBatch} T {t}: predicted {e.TensorBytes} measured {measured} ({(double)e.TensorBytes / measured:F3}); {e}");
        Assert.InRange((double)e.TensorBytes / measured, 0.7, 1.3);
    }

    [Fact]
    public void ClassificationIsPlannedIntoABudgetAndContrastiveIsRefusedWithTheReason()
    {
        var r = new EncoderMemoryPlanRequest { Model = Config, Task = EncoderTask.Classify, Method = FineTuneMethod.Full, MicroBatch = 32, SeqLen = 64, RuntimeBytes = 0 };
        var all = MemoryPlanner.Estimate(r);
        var small = MemoryPlanner.Estimate(r with { MicroBatch = 4 });
        var plan = MemoryPlanner.PlanEncoder(r, small.Total + 1);
        Assert.True(plan.Fits, plan.Reason);
        Assert.True(plan.Request.MicroBatch <= 4);
        Assert.Equal(32, plan.Request.MicroBatch * plan.Request.GradAccumulation);
        Assert.Contains(plan.Changes, c => c.StartsWith("micro-batch 32 → 16", StringComparison.Ordinal));
        Assert.True(plan.Estimate.Total < all.Total);

        var embed = MemoryPlanner.PlanEncoder(r with { Task = EncoderTask.Embed }, small.Total + 1);
        Assert.False(embed.Fits);
        Assert.Contains("in-batch negatives", embed.Reason);
        Assert.Empty(embed.Changes);
    }
}
