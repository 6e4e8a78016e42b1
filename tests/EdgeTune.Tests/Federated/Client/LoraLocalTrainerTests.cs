using EdgeTune.Adapters;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Federated.Client;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.Client;

public class LoraLocalTrainerTests
{
    private static (DecoderModel Model, LoraAdapter Adapter, int[] Tokens) Setup()
    {
        var model = DecoderModel.CreateRandom(Models.LlamaModelTests.SmallConfig(), seed: 5, std: 0.1f);
        var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = LoraConfig.AllLlamaProjections });
        var rng = new Rng(9);
        var tokens = Enumerable.Range(0, 400).Select(_ => rng.NextInt(53)).ToArray();
        return (model, adapter, tokens);
    }

    [Fact]
    public void AdapterVectorRoundTripsInLayoutOrder()
    {
        var (model, adapter, _) = Setup();
        using var _m = model;
        var layout = AdapterVector.LayoutOf(adapter);
        Assert.Equal(adapter.ParameterCount, layout.TotalLength);
        Assert.Equal(adapter.Parameters.Select(p => p.Name), layout.Slots.Select(s => s.Name));
        var v = Enumerable.Range(0, (int)layout.TotalLength).Select(i => i * 0.001f).ToArray();
        AdapterVector.Write(adapter, v);
        Assert.Equal(v, AdapterVector.Read(adapter));
        Assert.Throws<ShapeException>(() => AdapterVector.Write(adapter, new float[3]));
    }

    [Fact]
    public void FitReturnsTheChangeAndAStrongProximalTermKeepsItSmaller()
    {
        var (model, adapter, tokens) = Setup();
        using var _m = model;
        var trainer = new LoraLocalTrainer(model, adapter, tokens, tokens) { SequenceLength = 16 };
        var layout = AdapterVector.LayoutOf(adapter);
        var global = AdapterVector.Read(adapter);
        var fit = new FitInstructions { LocalSteps = 4, BatchSize = 2, SequenceLength = 16, LearningRate = 1e-2, Seed = 3 };
        var free = trainer.Fit(new LocalFitRequest(1, 0, layout, global, fit), default);
        Assert.Equal(layout.TotalLength, free.Delta.Length);
        Assert.Contains(free.Delta, d => d != 0);
        Assert.True(double.IsFinite(free.Metrics["train_loss"]));
        // the proximal gradient μ(w − w_global) with a huge μ pulls every step back towards the global weights
        var prox = trainer.Fit(new LocalFitRequest(1, 0, layout, global, fit with { ProximalMu = 1e4 }), default);
        static double Norm(float[] d) => Math.Sqrt(d.Sum(x => (double)x * x));
        Assert.True(Norm(prox.Delta) < Norm(free.Delta), $"proximal {Norm(prox.Delta)} vs free {Norm(free.Delta)}");
        var eval = trainer.Evaluate(layout, global);
        Assert.NotNull(eval);
        Assert.Equal(Math.Exp(eval["loss"]), eval["ppl"], 9);
    }
}
