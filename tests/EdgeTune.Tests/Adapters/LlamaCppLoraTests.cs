using EdgeTune.Adapters;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Text;
using LLama;
using LLama.Common;
using LLama.Native;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Adapters;

/// <summary>
/// A LoRA GGUF exported from an adapter, applied by llama.cpp (LLamaSharp 0.30.0, CPU) on top of the exported base
/// model, gives the logits of our merged model. Shares the "llama.cpp" collection with the other llama.cpp tests so
/// they never run at the same time. Skips with the reason where the native library cannot load.
/// </summary>
[Collection(Formats.Export.LlamaCppCollection.Name)]
public sealed class LlamaCppLoraTests(ITestOutputHelper output)
{
    private static readonly int[] PromptIds = [1, 403, 407, 261, 378];
    /// <param name="randomHalfSplit">false: stories260K itself (interleaved q/k rows, no permutation needed);
    /// true: a random model of its shapes running half-split RoPE, so q/k lora_b rows must be permuted on export.</param>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoraGgufInLlamaCppMatchesOurMergedModel(bool randomHalfSplit)
    {
        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        var cfg = CheckpointReader.ConfigFor(reader);
        using var model = randomHalfSplit ? DecoderModel.CreateRandom(cfg, 17, RopeStyle.HalfSplit, std: 0.1f) : DecoderModel.Load(reader, cfg);
        if (randomHalfSplit) reader.Dispose();
        Formats.Export.LlamaCpp.RequireNative();

        using var dir = new TempDir();
        string basePath = dir.File("base-f32.gguf"), loraPath = dir.File("lora-f32.gguf");
        ModelExporter.ExportGguf(model, tok, basePath, DType.F32);
        int v = model.VocabSize;
        float[] baseLogits = AdapterTestUtil.Logits(model, PromptIds);

        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllLlamaProjections, InitSeed = 3 });
        AdapterTestUtil.RandomizeB(adapter, 21, std: 0.1);
        LoraGgufExporter.Export(adapter, model, loraPath);
        float[] unmerged = AdapterTestUtil.Logits(model, PromptIds);
        adapter.Merge();
        float[] ours = AdapterTestUtil.Logits(model, PromptIds);
        double effect = AdapterTestUtil.MaxAbsDiff(baseLogits, ours);
        Assert.True(effect > 0.05, $"the adapter should move the logits (max |Δ| vs base {effect:E3})");
        Assert.True(AdapterTestUtil.MaxAbsDiff(unmerged, ours) <= 1e-5);

        var p = new ModelParams(basePath)
        {
            ContextSize = 64, BatchSize = 64, UBatchSize = 64, Threads = 1, BatchThreads = 1, GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        var lora = weights.NativeHandle.LoadLoraFromFile(loraPath);
        using var ctx = weights.CreateContext(p);
        ctx.NativeHandle.SetLoraAdapters([(lora, 1f)]);
        var batch = new LLamaBatch();
        for (int i = 0; i < PromptIds.Length; i++) batch.Add(PromptIds[i], i, LLamaSeqId.Zero, true);
        Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        double worst = 0;
        for (int i = 0; i < PromptIds.Length; i++)
        {
            var row = ctx.NativeHandle.GetLogitsIth(i);
            Assert.Equal(v, row.Length);
            double d = AdapterTestUtil.MaxAbsDiff(ours.AsSpan(i * v, v).ToArray(), row.ToArray());
            output.WriteLine($"position {i}: max |Δlogit| llama.cpp+LoRA vs our merged = {d:E3} (adapter effect {effect:E3})");
            worst = Math.Max(worst, d);
        }
        Assert.True(worst <= 1e-4, $"max |Δlogit| {worst:E3} exceeds 1e-4");
    }
}
