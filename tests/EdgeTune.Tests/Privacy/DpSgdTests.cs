using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Privacy;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Privacy;

public class DpSgdTests
{
    private static DecoderModel TinyF64()
    {
        var cfg = Models.LlamaModelTests.SmallConfig() with { HiddenSize = 8, IntermediateSize = 7, HeadDim = 2, VocabSize = 11, NumHiddenLayers = 2 };
        return DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, dtype: DType.F64);
    }

    /// <summary>Three real rows and one padding row (no trained target), T = 4.</summary>
    private static TrainingBatch Batch() => new(
        [1, 4, 7, 2, 9, 3, 3, 5, 2, 2, 8, 1, 0, 0, 0, 0],
        [4, 7, 2, 6, 3, 3, 5, -100, 2, 8, 1, 10, -100, -100, -100, -100], 4, 4);

    [Theory]
    [InlineData(DpPerExampleMode.Loop, PerExampleNormMethod.Auto, false, false)]
    [InlineData(DpPerExampleMode.Ghost, PerExampleNormMethod.Direct, false, false)]
    [InlineData(DpPerExampleMode.Ghost, PerExampleNormMethod.Gram, false, false)]
    [InlineData(DpPerExampleMode.Ghost, PerExampleNormMethod.Auto, true, false)]
    [InlineData(DpPerExampleMode.Ghost, PerExampleNormMethod.Auto, false, true)]
    public void PerExampleClippingMatchesANaivePerExampleLoop(DpPerExampleMode mode, PerExampleNormMethod norms, bool checkpointing, bool dora)
    {
        using var model = TinyF64();
        model.ActivationCheckpointing = checkpointing;
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 3, Alpha = 4, UseDora = dora, TargetModules = LoraConfig.AllLlamaProjections });
        Adapters.AdapterTestUtil.RandomizeB(adapter, 3, std: 0.5);
        var trainable = adapter.Parameters.Trainable.ToList();
        var lm = DelegateTrainableModel.For(model, activationCheckpointing: checkpointing);
        var batch = Batch();

        // Naive reference: each real row's full gradient on its own, its norm, the clip, the sum, / L.
        var norms2 = new List<double>();
        var perExample = new List<double[][]>();
        for (int r = 0; r < 3; r++)
        {
            foreach (var p in trainable) p.ZeroGrad();
            using (var tape = new Tape())
                tape.Backward(model.Loss(tape, batch.Tokens[(r * 4)..(r * 4 + 4)], batch.Targets[(r * 4)..(r * 4 + 4)], 1, 4));
            var g = trainable.Select(p => p.Grad!.ReadOnlySpan<double>().ToArray()).ToArray();
            perExample.Add(g);
            norms2.Add(Math.Sqrt(g.Sum(a => a.Sum(v => v * v))));
        }
        foreach (var p in trainable) p.ZeroGrad();
        double clip = norms2.OrderBy(n => n).ElementAt(1); // the middle norm: one row clipped, one not, one at the bound
        const int lot = 4;
        var expected = trainable.Select(p => new double[p.ElementCount]).ToArray();
        for (int r = 0; r < 3; r++)
        {
            double scale = Math.Min(1, clip / norms2[r]);
            for (int i = 0; i < expected.Length; i++)
                for (int j = 0; j < expected[i].Length; j++) expected[i][j] += scale * perExample[r][i][j] / lot;
        }

        var dp = new DpSgd(clip, noiseMultiplier: 1e-12, lotSize: lot, datasetSize: 100, delta: 1e-5, new Rng(7)) { PerExample = mode, NormMethod = norms };
        double meanLoss = dp.ComputeGradient(lm, trainable, [batch]);
        Assert.Equal(3, dp.LastExamples);
        Assert.InRange(dp.LastClipped, 1, 2); // the largest norm is clipped; the middle one sits on the bound (either side by rounding)
        if (mode == DpPerExampleMode.Ghost) Assert.Equal(dora, dp.GhostUnsupported is not null); // DoRA's magnitude is no Linear weight: loop fallback
        double maxDiff = 0, maxAbs = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            var got = trainable[i].Grad!.ReadOnlySpan<double>();
            for (int j = 0; j < got.Length; j++) { maxDiff = Math.Max(maxDiff, Math.Abs(got[j] - expected[i][j])); maxAbs = Math.Max(maxAbs, Math.Abs(expected[i][j])); }
        }
        Assert.True(maxAbs > 1e-3, $"reference gradient is degenerate ({maxAbs})");
        Assert.True(maxDiff < 1e-10, $"max |DP-SGD − naive| = {maxDiff}");

        // The mean loss is the mean over the lot's trained targets (the examples' own losses weighted by their targets).
        double naiveLoss = 0;
        int[] counts = [4, 3, 4];
        for (int r = 0; r < 3; r++)
        {
            using var tape = new Tape { IsRecording = false };
            naiveLoss += model.Loss(tape, batch.Tokens[(r * 4)..(r * 4 + 4)], batch.Targets[(r * 4)..(r * 4 + 4)], 1, 4).Item() * counts[r] / 11;
        }
        Assert.Equal(naiveLoss, meanLoss, 12);

        // Clipped sums really differ from the plain batch gradient (clipping took effect).
        foreach (var p in trainable) p.ZeroGrad();
        using (var tape = new Tape()) tape.Backward(model.Loss(tape, batch.Tokens, batch.Targets, 4, 4));
        double batchDiff = 0;
        for (int i = 0; i < trainable.Count; i++)
        {
            var g = trainable[i].Grad!.ReadOnlySpan<double>();
            for (int j = 0; j < g.Length; j++) batchDiff = Math.Max(batchDiff, Math.Abs(g[j] * 3 / lot - expected[i][j]));
        }
        Assert.True(batchDiff > 1e-6, "clipping changed nothing");
    }

    /// <summary>A bare weight used twice (y = x₁Wᵀ + x₂Wᵀ, odd sizes): per-example norms and a reweighted sum against each
    /// example's gradient formed on its own, both norm routes, in double precision.</summary>
    [Theory]
    [InlineData(PerExampleNormMethod.Direct)]
    [InlineData(PerExampleNormMethod.Gram)]
    public void LinearPerExampleNormsAndWeightedSumMatchPerExampleGradients(PerExampleNormMethod method)
    {
        const int b = 5, t = 7, inF = 11, outF = 3;
        var rng = new Rng(19);
        Tensor Random(params int[] shape)
        {
            var v = Tensor.Zeros(DType.F64, shape);
            var s = v.Span<double>();
            for (int i = 0; i < s.Length; i++) s[i] = rng.NextGaussian();
            return v;
        }
        using var w = new Parameter("w", Random(outF, inF));
        using var x1 = Random(b, t, inF);
        using var x2 = Random(b, t, inF);
        using var up = Random(b, t, outF); // loss = Σ up ⊙ y, so dy = up: a different output gradient per row
        double[] coef = Enumerable.Range(0, b).Select(i => 0.3 + i * 0.7).ToArray();

        // Reference: example i's gradient alone, Σ_t up_t (x1_t + x2_t)ᵀ.
        var perExample = new double[b][];
        for (int i = 0; i < b; i++)
        {
            w.ZeroGrad();
            using var tape = new Tape();
            var a = tape.Linear(Variable.Constant(Slice(x1, i, t, inF)), w);
            var c = tape.Linear(Variable.Constant(Slice(x2, i, t, inF)), w);
            var y = tape.Add(a, c);
            tape.Backward(tape.Sum(tape.Mul(y, Variable.Constant(Slice(up, i, t, outF)))));
            perExample[i] = w.Grad!.ReadOnlySpan<double>().ToArray();
        }
        w.ZeroGrad();

        using var capture = new PerExampleLinearGradients([w], b, t, method);
        using (var tape = new Tape { PerExample = capture })
        {
            var y = tape.Add(tape.Linear(Variable.Constant(x1.Clone()), w), tape.Linear(Variable.Constant(x2.Clone()), w));
            tape.Backward(tape.Sum(tape.Mul(y, Variable.Constant(up.Clone()))));
        }
        Assert.False(w.Grad!.ReadOnlySpan<double>().ContainsAnyExcept(0.0)); // captured, not accumulated
        double[] sq = capture.SquaredNorms();
        Assert.Equal(method == PerExampleNormMethod.Gram ? 1 : 0, capture.GramWeights);
        for (int i = 0; i < b; i++)
        {
            double want = perExample[i].Sum(v => v * v);
            Assert.True(Math.Abs(sq[i] - want) <= 1e-10 * want, $"example {i}: {sq[i]} vs {want}");
        }
        capture.AccumulateWeighted(coef);
        var got = w.Grad!.ReadOnlySpan<double>();
        for (int j = 0; j < got.Length; j++)
        {
            double want = 0;
            for (int i = 0; i < b; i++) want += coef[i] * perExample[i][j];
            Assert.Equal(want, got[j], 10);
        }
    }

    private static Tensor Slice(Tensor t3, int i, int t, int f) => Tensor.From<double>(t3.ReadOnlySpan<double>().Slice(i * t * f, t * f), [1, t, f]);

    [Fact]
    public void GhostNormRouteFollowsTheCost()
    {
        // A LoRA factor (r = 8, d = 576) over 256 tokens: forming the 8×576 gradient is far cheaper than 256² Gram entries.
        var (direct, gram) = PerExampleLinearGradients.Cost(256, 576, 8);
        Assert.True(direct < gram);
        // Four tokens through a 576×576 weight: the Gram route wins.
        (direct, gram) = PerExampleLinearGradients.Cost(4, 576, 576);
        Assert.True(gram < direct);
    }

    [Fact]
    public void NoiseHasMeanZeroAndStdSigmaCOverTheLotSize()
    {
        using var p = new Parameter("w", Tensor.Zeros(DType.F32, [400, 500], "w"));
        const double sigma = 1.5, clip = 0.7;
        const int lot = 8;
        var dp = new DpSgd(clip, sigma, lot, 1000, 1e-5, new Rng(42));
        dp.Begin([p]);
        dp.Release([p]);
        var g = p.Grad!.ReadOnlySpan<float>();
        double n = g.Length, sum = 0, sq = 0;
        foreach (float v in g) { sum += v; sq += (double)v * v; }
        double mean = sum / n, std = Math.Sqrt(sq / n - mean * mean), expectedStd = sigma * clip / lot;
        Assert.True(Math.Abs(mean) < 4 * expectedStd / Math.Sqrt(n), $"mean {mean}");
        Assert.InRange(std / expectedStd, 0.99, 1.01); // 200 000 draws: the sample std is within ±0.5% at 3 sd
        // Excess kurtosis ≈ 0 (Gaussian, not uniform or heavy-tailed).
        double m4 = 0;
        foreach (float v in g) m4 += Math.Pow(v - mean, 4);
        Assert.InRange(m4 / n / Math.Pow(std, 4) - 3, -0.05, 0.05);
    }

    [Fact]
    public void TrainerReportsEpsilonAndRefusesAMismatchedLot()
    {
        using var model = TinyF64();
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllLlamaProjections });
        var lm = new DelegateTrainableModel(adapter.Parameters, (tape, tok, tgt, b, t) => model.Loss(tape, tok, tgt, b, t));
        var seqs = Enumerable.Range(0, 20).Select(i => new EdgeTune.Text.Datasets.TrainingSequence([i % 11, (i + 3) % 11, (i + 5) % 11, 1], [(i + 3) % 11, (i + 5) % 11, 1, 2], 1)).ToList();
        var source = new SequenceBatcherSource(new EdgeTune.Text.Datasets.SequenceBatcher(seqs, 2, 1));
        var options = new TrainingOptions { Steps = 6, MicroBatch = 2, GradAccumulation = 2, SeqLen = 4, EvalEvery = 0, CheckpointEvery = 0, LearningRate = 1e-2 };
        var metrics = new ListSink();
        var dp = new DpSgd(1.0, 1.3, lotSize: 4, datasetSize: 20, delta: 1e-5, new Rng(3));
        using (var trainer = new Trainer(lm, source, options) { Privacy = dp, Metrics = metrics })
        {
            var result = trainer.Run();
            Assert.Equal(TrainingStopReason.Completed, result.Reason);
            double expected = NoiseCalibration.EpsilonFor(0.2, 1.3, 6, 1e-5);
            Assert.Equal(expected, result.DpEpsilon!.Value, 12);
            var steps = metrics.Items.Where(s => s.Event == TrainingEvent.Step).ToList();
            Assert.Equal(6, steps.Count);
            Assert.Equal(NoiseCalibration.EpsilonFor(0.2, 1.3, 1, 1e-5), steps[0].DpEpsilon!.Value, 12);
            Assert.True(steps.Zip(steps.Skip(1)).All(p => p.Second.DpEpsilon > p.First.DpEpsilon));
            Assert.Contains("DP-SGD", result.Message);
        }
        var wrong = new DpSgd(1.0, 1.3, lotSize: 2, datasetSize: 20, delta: 1e-5, new Rng(3));
        using var t2 = new Trainer(lm, source, options) { Privacy = wrong };
        Assert.Throws<InvalidOperationException>(() => t2.Run());
    }

    [Fact]
    public void OptionsAndLotSizesOutOfRangeAreRefused()
    {
        Assert.Throws<ArgumentException>(() => new DpSgdOptions().Validate()); // neither σ nor ε
        Assert.Throws<ArgumentException>(() => new DpSgdOptions { NoiseMultiplier = 1, TargetEpsilon = 1 }.Validate());
        Assert.Throws<ArgumentException>(() => new DpSgdOptions { TargetEpsilon = 1, ClipNorm = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new DpSgdOptions { TargetEpsilon = 1, Delta = 1 }.Validate());
        Assert.Throws<ArgumentException>(() => DpSgd.Create(new DpSgdOptions { TargetEpsilon = 1 }, lotSize: 64, datasetSize: 10, steps: 5));
        var dp = DpSgd.Create(new DpSgdOptions { TargetEpsilon = 2, NoiseSeed = 1 }, lotSize: 8, datasetSize: 1000, steps: 500);
        Assert.InRange(NoiseCalibration.EpsilonFor(dp.SamplingRate, dp.NoiseMultiplier, 500, 1e-5), 1.99, 2.0);
    }

    [Theory]
    [InlineData("ghost", "per-example gradients: ghost clipping")]
    [InlineData("loop", "per-example gradients: loop")]
    public void FinetuneChoosesThePerExampleMethod(string mode, string expected)
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-dp-mode-").FullName;
        try
        {
            var r = Cli.CliRunner.Run("finetune", "--method", "lora", "--steps", "2", "--checkpoint-every", "0", "--eval-every", "0", "--dp-noise", "1.0",
                "--dp-per-example", mode, "--out", Path.Combine(dir, "run"));
            Assert.True(r.Code == 0, r.Err + r.Out);
            Assert.Contains(expected, r.Out + r.Err);
            Assert.Equal(2, Cli.CliRunner.Run("finetune", "--dp-noise", "1.0", "--dp-per-example", "vectorised", "--out", Path.Combine(dir, "x")).Code);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private sealed class ListSink : IMetricsSink
    {
        public List<TrainingStatus> Items { get; } = [];
        public void Write(TrainingStatus status) => Items.Add(status);
    }
}
