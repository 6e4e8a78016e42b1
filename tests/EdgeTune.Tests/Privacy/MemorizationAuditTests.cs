using EdgeTune.Adapters;
using EdgeTune.Models;
using EdgeTune.Privacy;
using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Training;

namespace EdgeTune.Tests.Privacy;

public class MemorizationAuditTests
{
    [Fact]
    public void ExposureOfAHandRankedCanary()
    {
        // R = the 10 one-digit secrets; the canary's log-perplexity is 2.0; of the 9 others, 0.5, 1.0 and the tie 2.0
        // are at or below it, so its rank is 4 and its exposure log2(10) − log2(4) = 1.321928...
        double[] others = [1.0, 3.0, 2.0, 5, 6, 7, 8, 9, 0.5];
        Assert.Equal(4, CanaryExposure.Rank(2.0, others));
        Assert.Equal(1.3219280948873624, CanaryExposure.FromRank(10, 4), 12);
        Assert.Equal(1.3219280948873624, CanaryExposure.Estimate(10, 2.0, others), 12); // all of R but the canary: exact
        Assert.Equal(Math.Log2(10), CanaryExposure.Estimate(10, 0.1, others), 12); // most likely: rank 1
        Assert.Equal(0, CanaryExposure.Estimate(10, 9.5, others), 12); // least likely: rank |R|
        // Sampled: |R| = 1000, 2 of 4 samples below → rank 1 + 999·2/4 = 500.5.
        Assert.Equal(Math.Log2(1000) - Math.Log2(500.5), CanaryExposure.Estimate(1000, 4, [1, 3, 5, 7]), 12);
        Assert.True(CanaryExposure.IsSaturated(0.5, [1, 3, 5, 7]));
    }

    [Fact]
    public void AucEqualsTheBruteForcePairwiseCount()
    {
        var rng = new Rng(11);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = 1 + rng.NextInt(40), m = 1 + rng.NextInt(40);
            // coarse values so that ties within and across the sets occur
            var a = Enumerable.Range(0, n).Select(_ => Math.Round(rng.NextGaussian() + 0.5, 1)).ToList();
            var b = Enumerable.Range(0, m).Select(_ => Math.Round(rng.NextGaussian(), 1)).ToList();
            double pairs = 0;
            foreach (double x in a) foreach (double y in b) pairs += x > y ? 1 : x == y ? 0.5 : 0;
            Assert.Equal(pairs / (n * m), MembershipInference.Auc(a, b), 12);
        }
        Assert.Equal(1.0, MembershipInference.AucFromLosses([0.1, 0.2], [0.3, 0.4]), 12);
        Assert.Equal(0.5, MembershipInference.AucFromLosses([1, 1], [1]), 12);
    }

    [Fact]
    public void CanariesRenderEncodeAndRoundTrip()
    {
        var set = CanarySet.Generate(4, seed: 9, repeats: 3);
        Assert.Equal(4, set.Secrets.Distinct().Count());
        Assert.All(set.Secrets, s => Assert.Matches("^[0-9]{6}$", s));
        Assert.Equal("my code is 4 8 1 5 9 2", set.Render("481592"));
        Assert.Equal(set.Secrets, CanarySet.Generate(4, seed: 9, repeats: 3).Secrets); // seed-controlled
        var back = CanarySet.FromJson(set.ToJson());
        Assert.Equal(set.Secrets, back.Secrets);
        Assert.Equal((set.Prefix, set.Separator, set.Digits, set.Repeats), (back.Prefix, back.Separator, back.Digits, back.Repeats));
        var tok = new ByteTokenizer();
        var seqs = set.ToSequences(tok, 32, tok.PadId!.Value);
        Assert.Equal(12, seqs.Count);
        Assert.Equal(CanarySet.Encode(tok, set.Render(set.Secrets[0]))[1..], seqs[0].Targets.Where(t => t != CrossEntropy.IgnoreIndex).ToArray());
        Assert.Throws<InvalidDataException>(() => CanarySet.FromJson("{\"digits\":2,\"secrets\":[\"123\"]}"));
    }

    /// <summary>An enumerated audit's rank equals the rank among all |R| texts scored one by one.</summary>
    [Fact]
    public void EnumeratedRankMatchesScoringEverySecret()
    {
        using var model = DecoderModel.CreateRandom(EdgeTune.Tests.Serving.ChatTestKit.Config, 3, std: 0.02f); // byte vocabulary
        var lm = DelegateTrainableModel.For(model);
        var tok = new ByteTokenizer();
        var set = new CanarySet("pin ", "", 2, 1, ["37"]);
        var r = MemorizationAudit.MeasureCanary(lm, tok, set, "37", candidates: 1000, new Rng(1));
        Assert.True(r.Enumerated);
        Assert.Equal(99, r.Candidates);
        var all = Enumerable.Range(0, 100).Select(v => (Secret: v.ToString("00"), Nll: MemorizationAudit.SequenceNll(lm, CanarySet.Encode(tok, "pin " + v.ToString("00"))))).ToList();
        double own = all.Single(x => x.Secret == "37").Nll;
        Assert.Equal(own, r.LogPerplexity, 12);
        int rank = 1 + all.Count(x => x.Secret != "37" && x.Nll <= own);
        Assert.Equal(rank, r.Rank);
        Assert.Equal(Math.Log2(100) - Math.Log2(rank), r.Exposure, 12);
    }

    /// <summary>stories260K with a LoRA adapter trained many steps on canaries exposes them clearly more than the
    /// untrained model does.</summary>
    [SkippableFact]
    public void TrainingOnCanariesRaisesTheirExposure()
    {
        using var loaded = ModelLoader.Load(TestAssets.Require("stories260K/stories260K.bin"), TestAssets.Require("stories260K/tok512.bin"));
        var model = (DecoderModel)loaded.Model;
        var tok = loaded.RequireTokenizer();
        var set = CanarySet.Generate(3, seed: 5, repeats: 4, digits: 4);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 8, Alpha = 16, TargetModules = LoraConfig.AllLlamaProjections });
        var lm = new DelegateTrainableModel(adapter.Parameters, (tape, t, g, b, n) => model.Loss(tape, t, g, b, n));
        var audit = new AuditOptions { Candidates = 300, Seed = 2 };
        double before = MemorizationAudit.Run(lm, tok, null, null, null, set, audit).MeanExposure!.Value;

        var seqs = set.ToSequences(tok, 24, tok.EosId ?? 0);
        var source = new SequenceBatcherSource(new EdgeTune.Text.Datasets.SequenceBatcher(seqs, 4, 1));
        var options = new TrainingOptions { Steps = 80, MicroBatch = 4, SeqLen = 24, LearningRate = 1e-2, WarmupSteps = 5, EvalEvery = 0, CheckpointEvery = 0 };
        using (var trainer = new Trainer(lm, source, options)) Assert.Equal(TrainingStopReason.Completed, trainer.Run().Reason);
        var after = MemorizationAudit.Run(lm, tok, null, null, null, set, audit);
        Assert.True(after.MeanExposure > before + 4, $"exposure before {before:F2}, after {after.MeanExposure:F2} bits of {Math.Log2(1e4):F2}");
        Assert.All(after.Canaries, c => Assert.False(c.Enumerated));
    }
}
