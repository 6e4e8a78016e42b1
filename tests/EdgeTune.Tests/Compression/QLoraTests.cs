using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Training;

namespace EdgeTune.Tests.Compression;

/// <summary>LoRA over a frozen quantized base (QLoRA): only the adapters train, the quantized bytes never change.</summary>
public class QLoraTests
{
    [Theory]
    [InlineData(QuantFormat.NF4, false)]
    [InlineData(QuantFormat.Q4_0, true)]
    [InlineData(QuantFormat.Q8_0, false)]
    public void TrainingLowersTheLossAndSavesAPeftAdapter(QuantFormat format, bool checkpointing)
    {
        using var model = DecoderModel.CreateRandom(ModelQuantizerTests.Config(), 8, std: 0.1f);
        var report = ModelQuantizer.Quantize(model, format);
        Assert.Equal(14, report.Layers);
        var down = (QuantizedLinear)model.Layers[0].Proj("mlp.down_proj");
        byte[] before = down.Weight.Bytes.ToArray();
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllLlamaProjections, InitSeed = 2 });
        Assert.All(adapter.Layers, l => Assert.IsType<QuantizedLinear>(l.Base));
        model.ActivationCheckpointing = checkpointing;

        // one fixed batch of a repeating pattern: the adapters can fit it
        const int b = 2, t = 16;
        var tokens = new int[b * t];
        var targets = new int[b * t];
        for (int i = 0; i < tokens.Length; i++) { tokens[i] = 3 + i % 7 * 5; targets[i] = 3 + (i + 1) % 7 * 5; }
        var opt = new AdamW(adapter.Parameters, new AdamWOptions { LearningRate = 1e-2 });
        double first = 0, last = 0;
        for (int step = 0; step < 25; step++)
        {
            adapter.Parameters.ZeroGrad();
            using var tape = new Tape();
            var loss = model.Loss(tape, tokens, targets, b, t);
            double l = loss.Value.ToFloatArray()[0];
            if (step == 0) first = l;
            last = l;
            tape.Backward(loss);
            opt.Step();
        }
        Assert.True(last < first - 0.5, $"{format}: loss {first:F3} -> {last:F3}");
        Assert.Equal(before, down.Weight.Bytes.ToArray());
        Assert.DoesNotContain(model.Parameters, p => p.Trainable);

        using var dir = new TempDir();
        AdapterFiles.Save(adapter, dir.File("adapter"));
        Assert.True(File.Exists(Path.Combine(dir.File("adapter"), AdapterFiles.ConfigFile)));
        using var st = EdgeTune.Formats.SafeTensorsFile.Open(Path.Combine(dir.File("adapter"), "adapter_model.safetensors"));
        Assert.Contains(st.Tensors, x => x.Name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
        Assert.Equal(14 * 2, st.Tensors.Count);
    }

    [Fact]
    public void MemoryPlannerCountsTheQuantizedBase()
    {
        var cfg = Formats.Export.LlamaCppParityTests.SmolLm2Config(30);
        var f32 = new MemoryPlanRequest { Model = cfg, LoraRank = 8, ActivationCheckpointing = true };
        var nf4 = f32 with { BaseQuantization = QuantFormat.NF4 };
        long projElems = 30L * (576 * 576 * 2 + 192 * 576 * 2 + 3 * 1536 * 576);
        long expectedSaving = projElems * 4 - 30L * (2 * 576 * QuantFormat.NF4.RowBytes(576) + 2 * 192 * QuantFormat.NF4.RowBytes(576)
            + 2 * 1536 * QuantFormat.NF4.RowBytes(576) + 576 * QuantFormat.NF4.RowBytes(1536));
        Assert.Equal(expectedSaving, MemoryPlanner.Estimate(f32).Weights - MemoryPlanner.Estimate(nf4).Weights);
    }
}
