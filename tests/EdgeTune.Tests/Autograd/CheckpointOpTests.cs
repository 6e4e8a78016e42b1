using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;

namespace EdgeTune.Tests.Autograd;

public class CheckpointOpTests
{
    private static Dictionary<string, float[]> Grads(DecoderModel model, bool checkpointing, int[] tokens, int[] targets, int b, int t, out double loss)
    {
        model.ActivationCheckpointing = checkpointing;
        model.Parameters.ZeroGrad();
        using (var tape = new Tape()) loss = tape.Backward(model.Loss(tape, tokens, targets, b, t));
        return model.Parameters.Trainable.ToDictionary(p => p.Name, p => p.Grad!.ToFloatArray());
    }

    [Fact]
    public void LlamaGradientsAreBitIdenticalWithAndWithoutCheckpointingF32()
    {
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig("qwen2", bias: true), seed: 11, std: 0.2f, trainable: true);
        int[] tokens = [1, 4, 7, 2, 9, 3, 40, 12];
        int[] targets = [4, 7, 2, -100, 3, 10, 12, 5];
        var plain = Grads(model, false, tokens, targets, 2, 4, out double l1);
        var ckpt = Grads(model, true, tokens, targets, 2, 4, out double l2);
        Assert.Equal(l1, l2);
        Assert.Equal(plain.Count, ckpt.Count);
        foreach (var (name, g) in plain)
        {
            Assert.Contains(g, x => x != 0);
            Assert.True(g.AsSpan().SequenceEqual(ckpt[name]), $"gradient of {name} differs");
        }
    }

    [Fact]
    public void LoraLikeFrozenEmbeddingStillTrainsBlocksThroughCheckpoint()
    {
        // embedding frozen: the block input needs no gradient, yet the op must be recorded for the block weights
        using var model = DecoderModel.CreateRandom(LlamaModelTests.SmallConfig(), seed: 12, std: 0.2f, trainable: true);
        model.Parameters.SetTrainable("model.embed_tokens.weight", false);
        int[] tokens = [3, 1, 4, 1, 5, 9];
        int[] targets = [1, 4, 1, 5, 9, 2];
        var plain = Grads(model, false, tokens, targets, 1, 6, out _);
        var ckpt = Grads(model, true, tokens, targets, 1, 6, out _);
        Assert.NotEmpty(plain);
        foreach (var (name, g) in plain) Assert.True(g.AsSpan().SequenceEqual(ckpt[name]), $"gradient of {name} differs");
    }

    [Fact]
    public void CheckpointedLlamaMatchesFiniteDifferencesInDouble()
    {
        var cfg = LlamaModelTests.SmallConfig("qwen2", bias: true) with { HiddenSize = 8, IntermediateSize = 7, HeadDim = 2, VocabSize = 11, NumHiddenLayers = 2 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, trainable: true, dtype: DType.F64);
        model.ActivationCheckpointing = true;
        int[] tokens = [1, 4, 7, 2, 9, 3];
        int[] targets = [4, 7, 2, -100, 3, 10];
        int n = GradCheck.Check(model.Parameters, tape => model.Loss(tape, tokens, targets, batch: 2, time: 3), h: 1e-6, rtol: 1e-5, atol: 1e-8);
        Assert.True(n > 100);
    }

    [Fact]
    public void CheckpointingLowersPeakTapeMemory()
    {
        var cfg = LlamaModelTests.SmallConfig() with { NumHiddenLayers = 6 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 2, std: 0.2f, trainable: true);
        var rng = new Rng(1);
        int b = 2, t = 32;
        var tokens = new int[b * t];
        var targets = new int[b * t];
        for (int i = 0; i < tokens.Length; i++) { tokens[i] = rng.NextInt(cfg.VocabSize); targets[i] = rng.NextInt(cfg.VocabSize); }
        long Peak(bool on)
        {
            model.ActivationCheckpointing = on;
            using var scope = TensorMemory.Track();
            using (var tape = new Tape()) tape.Backward(model.Loss(tape, tokens, targets, b, t));
            Assert.Equal(0, scope.LiveBytes); // everything the tape made was freed
            return scope.PeakBytes;
        }
        long plain = Peak(false), ckpt = Peak(true);
        Assert.True(ckpt * 2 < plain, $"checkpointed peak {ckpt} B should be well below {plain} B");
    }

    [Fact]
    public void SegmentRunsOnceWithoutRecordingAndTwiceWithBackward()
    {
        var w = new Parameter("w", Tensor.From([2f, 3f], 2));
        var x = Variable.Constant(Tensor.From([1f, 5f], 2));
        using (var tape = new Tape { IsRecording = false })
        {
            var op = new CheckpointOp((t, v) => t.Mul(v, w.Variable), x);
            var y = tape.Apply(op);
            Assert.Equal([2f, 15f], y.Value.ToFloatArray());
            Assert.Equal(1, op.Runs);
            Assert.Equal(0, tape.Count);
        }
        using (var tape = new Tape())
        {
            var op = new CheckpointOp((t, v) => t.Mul(v, w.Variable), x);
            tape.Backward(tape.Sum(tape.Apply(op)));
            Assert.Equal(2, op.Runs);
            Assert.Equal([1f, 5f], w.Grad!.ToFloatArray());
        }
    }

    [Fact]
    public void RandomSegmentsReplayTheirGenerator()
    {
        var made = new List<Tensor>();
        Variable Segment(Tape t, Variable v, Rng rng, Parameter w)
        {
            var m = new float[8];
            for (int i = 0; i < m.Length; i++) m[i] = rng.NextFloat() < 0.5f ? 0f : 2f; // dropout-like mask
            var mask = Tensor.From(m, 8);
            made.Add(mask);
            return t.Mul(t.Mul(v, w.Variable), Variable.Constant(mask));
        }
        float[] Run(bool checkpointed, out RngState after)
        {
            using var w = new Parameter("w", Tensor.From([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f], 8));
            using var xt = Tensor.From([0.5f, -1f, 2f, 3f, -4f, 1.5f, 0.25f, 9f], 8);
            var x = Variable.Constant(xt);
            var rng = new Rng(9);
            using (var tape = new Tape())
            {
                var y = checkpointed ? tape.Checkpoint((t, v) => Segment(t, v, rng, w), x, rng) : Segment(tape, x, rng, w);
                tape.Backward(tape.Sum(y));
            }
            after = rng.State;
            return w.Grad!.ToFloatArray();
        }
        var plain = Run(false, out var s1);
        var ckpt = Run(true, out var s2);
        foreach (var t in made) t.Dispose();
        Assert.Contains(plain, g => g == 0);
        Assert.Contains(plain, g => g != 0);
        Assert.Equal(plain, ckpt);
        Assert.Equal(s1, s2); // the generator continues as if the segment had run once
    }
}
