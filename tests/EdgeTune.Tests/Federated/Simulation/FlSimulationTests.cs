using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Simulation;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Simulation;

public class FlSimulationTests
{
    [Fact]
    public void NonIidSplitGivesContiguousShardsAndIidDealsWindows()
    {
        var tokens = Enumerable.Range(0, 100).ToArray();
        var shards = TextSplit.Split(tokens, 4, nonIid: true, window: 5);
        Assert.Equal(tokens, shards.SelectMany(s => s));
        Assert.Equal(Enumerable.Range(0, 25), shards[0]);
        var dealt = TextSplit.Split(tokens, 4, nonIid: false, window: 5);
        Assert.Equal(tokens.Length, dealt.Sum(s => s.Length));
        Assert.Equal([0, 1, 2, 3, 4, 20, 21, 22, 23, 24], dealt[0][..10]);
        Assert.Throws<ArgumentException>(() => TextSplit.Split(tokens, 40, nonIid: true, window: 5));
    }

    [Fact]
    public async Task DropoutsComeBackAndEveryRoundCloses()
    {
        using var model = DecoderModel.CreateRandom(Models.LlamaModelTests.SmallConfig(), seed: 11, std: 0.1f);
        var rng = new Rng(4);
        int[] train = Enumerable.Range(0, 600).Select(_ => rng.NextInt(53)).ToArray(), val = train[..100];
        var options = new FlSimulationOptions
        {
            Clients = 3, Rounds = 2, Dropout = 0.5, MinQuorum = 1, EvalBatches = 2, LivenessTimeout = TimeSpan.FromSeconds(1),
            Fit = new FitInstructions { LocalSteps = 2, BatchSize = 2, SequenceLength = 16, LearningRate = 1e-2 },
            Lora = new EdgeTune.Adapters.LoraConfig { Rank = 2, Alpha = 4 },
        };
        var result = await FlSimulation.RunAsync(model, train, val, options).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, result.Rounds.Count);
        Assert.All(result.Rounds, r => Assert.InRange(r.Accepted, 1, 3));
        Assert.True(double.IsFinite(result.FinalLoss));
        Assert.Contains(result.FinalGlobal, v => v != 0);
        Directory.Delete(result.StateFolder, recursive: true);
    }
}
