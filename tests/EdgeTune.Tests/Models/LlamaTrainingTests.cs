using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Models;

public class LlamaTrainingTests
{
    [Fact]
    public void WholeModelGradientsMatchFiniteDifferencesInDouble()
    {
        // Every parameter kind: embedding (tied head), norms, q/k/v biases (Qwen2-style), all projections.
        var cfg = LlamaModelTests.SmallConfig("qwen2", bias: true) with { HiddenSize = 8, IntermediateSize = 7, HeadDim = 2, VocabSize = 11, NumHiddenLayers = 2 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, trainable: true, dtype: DType.F64);
        var rng = new Rng(9);
        foreach (var p in model.Parameters.Matching("*norm*").Concat(model.Parameters.Matching("*.bias")))
        {
            var values = p.Value.Span<double>();
            for (int i = 0; i < values.Length; i++) values[i] += 0.3 * rng.NextGaussian(); // not all ones / zeros
        }
        int[] tokens = [1, 4, 7, 2, 9, 3];
        int[] targets = [4, 7, 2, -100, 3, 10];
        GradCheck.Check(model.Parameters, tape => model.Loss(tape, tokens, targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8);
    }

    [Fact]
    public void TrainingLossEqualsCrossEntropyOfInferenceLogits()
    {
        var cfg = LlamaModelTests.SmallConfig();
        using var model = DecoderModel.CreateRandom(cfg, seed: 3, std: 0.2f);
        int[] tokens = [2, 8, 13, 21, 34];
        int[] targets = [8, 13, 21, 34, 5];
        using var tape = new Tape { IsRecording = false };
        double loss = model.Loss(tape, tokens, targets, 1, tokens.Length).Item();

        var logits = new float[tokens.Length * cfg.VocabSize];
        using (var cache = model.CreateCache(8)) model.Forward(tokens, cache, logits);
        double expected = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = logits.AsSpan(t * cfg.VocabSize, cfg.VocabSize);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float z in row) max = Math.Max(max, z);
            foreach (float z in row) sum += Math.Exp(z - max);
            expected += max + Math.Log(sum) - row[targets[t]];
        }
        Assert.Equal(expected / tokens.Length, loss, 1e-5);
    }

    [Fact]
    public void AdamWOnTheTapeLowersTheLossOfARepeatedSequence()
    {
        var cfg = LlamaModelTests.SmallConfig();
        using var model = DecoderModel.CreateRandom(cfg, seed: 4, trainable: true);
        var opt = new AdamW(model.Parameters, new AdamWOptions { LearningRate = 1e-2 });
        int[] tokens = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        int[] targets = [.. tokens[1..], 1];
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            opt.ZeroGrad();
            var tape = new Tape();
            double loss = tape.Backward(model.Loss(tape, tokens, targets, 2, 8));
            opt.Step();
            if (step == 0) first = loss;
            last = loss;
        }
        Assert.True(last < first * 0.5, $"loss went from {first} to {last}");
    }
}
