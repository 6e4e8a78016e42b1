using System.Runtime.CompilerServices;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Privacy;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Aggregation;

public class StreamingAggregationTests
{
    private static List<ClientUpdate> RandomUpdates(int clients, int length, ulong seed)
    {
        var rng = new Rng(seed);
        var list = new List<ClientUpdate>();
        for (int c = 0; c < clients; c++)
        {
            var d = new float[length];
            rng.FillGaussian(d, 0, 0.1f * (1 + c % 3));
            list.Add(new ClientUpdate($"c{c}", d, 1 + (long)(rng.NextDouble() * 500)));
        }
        return list;
    }

    private static List<T> Shuffled<T>(IReadOnlyList<T> items, Random random) => items.OrderBy(_ => random.Next()).ToList();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1003)] // vector blocks and a tail
    public void TheRunningSumIsBitForBitTheScalarSum(int length)
    {
        var updates = RandomUpdates(5, length, 11);
        var sum = new EdgeTune.Federated.Aggregation.Internal.WeightedSum("test", 1, length);
        var reference = new double[length];
        foreach (var u in updates)
        {
            double w = u.NumExamples * 0.37;
            sum.AddRaw(u.Delta, w);
            for (int i = 0; i < length; i++) reference[i] += w * u.Delta[i];
        }
        Assert.Equal(reference, sum.Sum.ToArray());
        Assert.Equal(updates.Sum(u => u.NumExamples * 0.37), sum.TotalWeight, 9);
    }

    public static TheoryData<string> MeanStrategies => new() { "fedavg", "fedprox", "fedadam", "fedyogi" };

    [Theory]
    [MemberData(nameof(MeanStrategies))]
    public void StreamingInAnyArrivalOrderEqualsTheBatchResultOverSeveralRounds(string name)
    {
        const int length = 257, rounds = 3;
        var batch = StrategyFactory.Create(name);
        var streams = Enumerable.Range(0, 4).Select(_ => (IStreamingAggregator)StrategyFactory.Create(name)).ToList();
        var random = new Random(1234);
        var global = new float[length];
        new Rng(7).FillGaussian(global, 0, 1);
        var streamGlobals = streams.Select(_ => (float[])global.Clone()).ToList();
        for (int round = 1; round <= rounds; round++)
        {
            var updates = RandomUpdates(12, length, (ulong)(100 + round));
            var expected = batch.Aggregate(round, global, updates);
            for (int k = 0; k < streams.Count; k++)
            {
                var r = streams[k].Begin(round, streamGlobals[k]);
                foreach (var u in Shuffled(updates, random)) r.Add(u);
                Assert.Equal(updates.Count, r.Count);
                streamGlobals[k] = r.Complete();
                for (int i = 0; i < length; i++) Assert.Equal(expected[i], streamGlobals[k][i], 1e-6);
            }
            Assert.NotEqual(global, expected); // the round moved the model
            global = expected;
        }
        // the optimizer state advanced identically in every instance
        foreach (var s in streams) Assert.Equal(batch.SaveState(), s.SaveState());
    }

    [Fact]
    public void BatchFedAvgMatchesTheWeightedMeanComputedByHand()
    {
        var global = new float[] { 1, 2 };
        var updates = new List<ClientUpdate> { new("a", [1, -1], 1), new("b", [4, 2], 3) };
        var next = new FedAvgStrategy().Aggregate(1, global, updates);
        Assert.Equal(new[] { 1 + 13f / 4, 2 + 5f / 4 }, next);
    }

    [Fact]
    public void CentralDpStreamingEqualsItsBatchResult()
    {
        DifferentialPrivacyStrategy Make() => new(new FedAvgStrategy(), new DifferentialPrivacyOptions
        {
            Mode = DpMode.Central, ClipNorm = 0.5, NoiseMultiplier = 1.1, SamplingRate = 0.5, Delta = 1e-5, Seed = 99,
        });
        var updates = RandomUpdates(9, 64, 5);
        var global = new float[64];
        var batch = Make();
        var expected = batch.Aggregate(1, global, updates);
        var stream = Make();
        var r = stream.Begin(1, global);
        foreach (var u in Shuffled(updates, new Random(3))) r.Add(u);
        var actual = r.Complete();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6);
        Assert.Equal(batch.LastClippedCount, stream.LastClippedCount);
        Assert.True(stream.LastClippedCount > 0);
        Assert.Equal(1, stream.Accountant.Rounds);
    }

    [Fact]
    public void StateChangesOnlyAtCompleteAndAnAbandonedRoundLeavesNoTrace()
    {
        var s = new FedAdamStrategy();
        var fresh = s.SaveState();
        var updates = RandomUpdates(3, 16, 11);
        var abandoned = s.Begin(1, new float[16]);
        foreach (var u in updates) abandoned.Add(u);
        Assert.Equal(fresh, s.SaveState());
        Assert.Equal(0, s.Steps);
        var r = s.Begin(1, new float[16]);
        r.Add(updates[0]);
        r.Complete();
        Assert.Equal(1, s.Steps);
        Assert.Throws<InvalidOperationException>(() => r.Complete());
    }

    [Fact]
    public void AddChecksItsInputAndLeavesTheSumUnchangedOnRefusal()
    {
        var r = new FedAvgStrategy().Begin(2, new float[4]);
        Assert.Throws<ShapeException>(() => r.Add(new ClientUpdate("short", new float[3], 1)));
        Assert.Throws<ArgumentException>(() => r.Add(new ClientUpdate("none", new float[4], 0)));
        Assert.Equal(0, r.Count);
        Assert.Throws<ArgumentException>(() => r.Complete()); // no updates
        var ok = new FedAvgStrategy().Begin(2, new float[4]);
        ok.Add(new ClientUpdate("a", [1, 1, 1, 1], 2));
        Assert.Throws<ArgumentException>(() => ok.Add(new ClientUpdate("none", new float[4], 0)));
        Assert.Equal([1f, 1f, 1f, 1f], ok.Complete());
    }

    [Theory]
    [MemberData(nameof(MeanStrategies))]
    public void AnAddedUpdateVectorIsNotRetainedAndMemoryDoesNotGrowWithClients(string name)
    {
        const int length = 1024;
        var r = ((IStreamingAggregator)StrategyFactory.Create(name)).Begin(1, new float[length]);
        long before = r.RetainedBytes;
        var refs = AddAndForget(r, 20, length);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.All(refs, w => Assert.False(w.IsAlive));
        Assert.Equal(before, r.RetainedBytes);
        Assert.True(r.RetainedBytes <= 12L * length, $"{r.RetainedBytes} bytes for a {length}-value model");
        Assert.Equal(20, r.Count);
        Assert.All(r.Complete(), v => Assert.True(float.IsFinite(v)));
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // no local of this frame may keep a vector alive during the GC
    private static List<WeakReference> AddAndForget(IRoundAggregation r, int clients, int length)
    {
        var refs = new List<WeakReference>();
        foreach (var u in RandomUpdates(clients, length, 42))
        {
            refs.Add(new WeakReference(u.Delta));
            r.Add(u);
        }
        return refs;
    }

    [Fact]
    public void RobustStrategiesDoNotStream()
    {
        Assert.All(new[] { "median", "trimmed-mean", "krum", "multi-krum" }, n => Assert.False(StrategyFactory.Create(n) is IStreamingAggregator));
    }
}
