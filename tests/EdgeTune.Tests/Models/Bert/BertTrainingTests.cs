using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Models.Bert;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tests.Autograd.Ops;
using EdgeTune.Training;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>
/// The encoder on the tape: gradient checks in double precision of the whole encoder (embeddings, blocks with padding),
/// of the contrastive and classification losses (with LoRA swapped in by path), the loss against a value computed apart
/// from the tape, and losses that fall under AdamW for LoRA and full fine-tuning.
/// </summary>
public sealed class BertTrainingTests
{
    private static readonly BertConfig Tiny = new(VocabSize: 13, HiddenSize: 8, Layers: 2, Heads: 2, IntermediateSize: 12, MaxPositions: 9, TypeVocabSize: 2, LayerNormEps: 1e-5f);

    /// <summary>Rows of unequal length (padding in all but the longest), ids 1..12 (0 = pad).</summary>
    private static BertBatch Batch(int rows, ulong seed)
    {
        var rng = new Rng(seed);
        var seqs = new List<IReadOnlyList<int>>();
        for (int r = 0; r < rows; r++)
        {
            int len = 2 + (int)(rng.NextDouble() * 5);
            seqs.Add(Enumerable.Range(0, len).Select(_ => 1 + (int)(rng.NextDouble() * 12)).ToArray());
        }
        return BertBatch.Pad(seqs);
    }

    [Fact]
    public void EncoderGradientsMatchFiniteDifferencesInDouble()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 5, std: 0.5f, trainable: true, dtype: DType.F64);
        var batch = Batch(3, 6);
        Assert.Contains(0, batch.AttentionMask);
        int n = GradCheck.Check(enc.Parameters, t => OpCheck.Weighted(t, enc.Hidden(t, batch)), rtol: 1e-5, atol: 1e-8);
        Assert.Equal(enc.Parameters.Sum(p => (int)p.ElementCount), n);
    }

    [Fact]
    public void ContrastiveLossGradientsMatchFiniteDifferences()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 7, std: 0.5f, trainable: true, dtype: DType.F64);
        var batch = Batch(6, 8);
        int n = GradCheck.Check(enc.Parameters, t => EncoderLosses.Contrastive(t, enc, batch), rtol: 1e-5, atol: 1e-8);
        Assert.True(n > 1000);
    }

    [Fact]
    public void ContrastiveLossIsScaledCosineCrossEntropyOverTheBatch()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 9, std: 0.5f, dtype: DType.F64);
        var batch = Batch(8, 10);
        using var tape = new Tape { IsRecording = false };
        double loss = EncoderLosses.Contrastive(tape, enc, batch).Item();

        // the same from the inference embeddings, by hand
        var e = enc.SentenceEmbeddings(batch);
        double expected = 0;
        for (int i = 0; i < 4; i++)
        {
            var s = Enumerable.Range(0, 4).Select(j => 20.0 * e[i].Zip(e[4 + j], (a, b) => (double)a * b).Sum()).ToArray();
            double max = s.Max();
            expected += max + Math.Log(s.Sum(x => Math.Exp(x - max))) - s[i];
        }
        Assert.Equal(expected / 4, loss, 4);
    }

    [Fact]
    public void ClassificationLossWithLoraGradientsMatchFiniteDifferences()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 11, std: 0.5f, dtype: DType.F64);
        using var adapter = LoraInjector.Apply(enc, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["query", "value", "dense"], InitSeed = 3 });
        Assert.Equal(2 * 5, adapter.Layers.Count); // query, value and the three 'dense' of each block
        var rng = new Rng(12);
        foreach (var m in adapter.Modules)
        {
            var b = m.B.Value.Span<double>();
            for (int i = 0; i < b.Length; i++) b[i] = 0.3 * (2 * rng.NextDouble() - 1); // B ≠ 0 so A's gradient is not trivially 0
        }
        var head = EncoderLosses.CreateClassifier(enc, 3, 13);
        using var headParameters = new ParameterCollection(head.Parameters);
        var batch = Batch(4, 14);
        int[] labels = [2, 0, 1, 2];
        var ps = adapter.Parameters.Concat(head.Parameters).Concat(enc.Parameters).ToList();
        int n = GradCheck.Check(ps, t => EncoderLosses.Classification(t, enc, head, batch, labels), rtol: 1e-5, atol: 1e-8);
        Assert.Equal((int)(adapter.ParameterCount + 3 * 8 + 3), n);
        Assert.All(enc.Parameters, p => Assert.False(p.Trainable));
    }

    [Fact]
    public void LoraTargetsTheEncodersProjectionsByShortNameAndLayerRange()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 15);
        using var adapter = LoraInjector.Apply(enc, new LoraConfig { Rank = 2, TargetModules = ["query", "key", "value", "dense"], LayerRange = (1, 1) });
        Assert.Equal(["encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.key", "encoder.layer.1.attention.self.value",
            "encoder.layer.1.attention.output.dense", "encoder.layer.1.intermediate.dense", "encoder.layer.1.output.dense"],
            adapter.Layers.Select(l => l.Name));
        Assert.IsType<LoraLinear>(ModuleTree.Get(enc, "encoder.layer.1.attention.self.key"));
        Assert.IsType<Linear>(ModuleTree.Get(enc, "encoder.layer.0.attention.self.key"));
        Assert.Throws<InvalidOperationException>(() => adapter.Model);
    }

    [Fact]
    public void LoraStartsAsTheBaseAndMergingKeepsTheOutput()
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 16, std: 0.3f);
        var batch = Batch(3, 17);
        var before = enc.SentenceEmbeddings(batch);
        using var adapter = LoraInjector.Apply(enc, new LoraConfig { Rank = 2, TargetModules = ["query", "value"] });
        Assert.Equal(before, enc.SentenceEmbeddings(batch)); // B = 0
        var rng = new Rng(18);
        foreach (var m in adapter.Modules) rng.FillGaussian(m.B.Value.Span<float>(), 0, 0.5f);
        var adapted = enc.SentenceEmbeddings(batch);
        Assert.NotEqual(before[0][0], adapted[0][0]);
        adapter.Merge();
        Assert.IsType<Linear>(ModuleTree.Get(enc, "encoder.layer.0.attention.self.query"));
        var merged = enc.SentenceEmbeddings(batch);
        for (int i = 0; i < 3; i++)
            for (int d = 0; d < 8; d++) Assert.Equal(adapted[i][d], merged[i][d], 1e-5f);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ContrastiveTrainingLowersTheLoss(bool lora)
    {
        using var enc = BertEncoder.CreateRandom(Tiny, 19, std: 0.3f, trainable: !lora);
        using var adapter = lora ? LoraInjector.Apply(enc, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ["query", "key", "value", "dense"] }) : null;
        var trainable = (adapter?.Parameters ?? enc.Parameters).Where(p => p.Trainable).ToList();
        using var opt = new AdamW(trainable, new AdamWOptions { LearningRate = lora ? 1e-2 : 3e-3, WeightDecay = 0 });
        var batch = Batch(8, 20);
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            using var tape = new Tape();
            last = tape.Backward(EncoderLosses.Contrastive(tape, enc, batch));
            if (step == 0) first = last;
            opt.Step();
            foreach (var p in trainable) p.ZeroGrad();
        }
        Assert.True(last < 0.5 * first, $"loss {first:F4} -> {last:F4}");
    }
}
