using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Models.Bert;
using EdgeTune.Training;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>
/// A few LoRA steps on the real all-MiniLM-L6-v2 over a dozen self-instruct pairs (instruction → motivating app): the
/// contrastive loss falls and retrieval MRR@10 on those pairs rises. The held-out figures come from
/// <c>EdgeTune.Bench encoder</c> (README), not from here.
/// </summary>
public sealed class MiniLmFineTuneTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void LoraStepsRaiseRetrievalOnTheTrainingPairs()
    {
        string path = TestAssets.Require("instruct/self_instruct_user_oriented_instructions.jsonl");
        var pairs = File.ReadLines(path).Take(120).Where((_, i) => i % 10 == 0).Select(line =>
        {
            using var doc = JsonDocument.Parse(line);
            return new TextPair(doc.RootElement.GetProperty("instruction").GetString()!, doc.RootElement.GetProperty("motivation_app").GetString()!);
        }).ToList();
        Assert.Equal(12, pairs.Count);
        var tok = MiniLmAssets.Tokenizer;
        using var encoder = BertOnnx.Load(MiniLmAssets.Graph, heads: 12);
        Assert.Equal(BertConfig.AllMiniLmL6V2, encoder.Config);
        var queries = pairs.Select(p => p.Anchor).ToList();
        var docs = pairs.Select(p => p.Positive).ToList();
        var (before, _) = EncoderRetrieval.Evaluate(encoder, tok, queries, docs, maxLength: 48);

        var result = EncoderFineTune.Run(encoder, tok, pairs, new EncoderFineTuneOptions
        {
            Lora = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["query", "value"] },
            Training = new TrainingOptions { Steps = 6, MicroBatch = 12, SeqLen = 48, LearningRate = 3e-3, WarmupSteps = 0, Schedule = LrScheduleKind.Constant, EvalEvery = 0, CheckpointEvery = 0 },
        });
        using var adapter = result.Adapter!;
        var (after, _) = EncoderRetrieval.Evaluate(encoder, tok, queries, docs, maxLength: 48);
        var losses = result.Training.Losses;
        output.WriteLine($"loss {losses[0]:F4} -> {losses[^1]:F4}; MRR@10 on the training pairs {before:F4} -> {after:F4}");
        Assert.True(losses[^1] < losses[0], $"loss {losses[0]} -> {losses[^1]}");
        Assert.True(after > before, $"MRR@10 {before} -> {after}");
        Assert.All(encoder.Parameters, p => Assert.False(p.Trainable));
    }
}
