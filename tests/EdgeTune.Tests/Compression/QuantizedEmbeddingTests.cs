using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Models;
using EdgeTune.Models.Llama;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Text;
using EdgeTune.Training;

namespace EdgeTune.Tests.Compression;

/// <summary>A quantized token embedding / LM head (QLoRA's frozen tied table): the fused LM-head loss, its input
/// gradient, the lookup and inference equal the same computation over the dequantized table as a plain F32 weight.</summary>
public class QuantizedEmbeddingTests
{
    private static (QuantizedMatrix Q, float[] Wide) Head(QuantFormat format, int vocab, int channels, ulong seed)
    {
        var w = new float[vocab * channels];
        new Rng(seed).FillGaussian(w, 0f, 0.5f);
        var q = QuantizedMatrix.Quantize(w, vocab, channels, format, "head");
        return (q, q.Dequantize());
    }

    [Theory]
    [InlineData(QuantFormat.NF4, 7, 64)]
    [InlineData(QuantFormat.NF4, 3, 100)]   // decode-sized rows, chunk > V
    [InlineData(QuantFormat.Q8_0, 13, 37)]
    [InlineData(QuantFormat.Q4_0, 9, 300)]
    public void QuantizedHeadLossAndInputGradientEqualTheDequantizedHead(QuantFormat format, int rows, int chunk)
    {
        const int v = 300, c = 64;
        var (q, wide) = Head(format, v, c, 1);
        using var _ = q;
        var x = new float[rows * c];
        new Rng(2).FillGaussian(x, 0f, 1f);
        var targets = Enumerable.Range(0, rows).Select(r => r == 1 ? CrossEntropy.IgnoreIndex : (r * 37 + 5) % v).ToArray();
        float[] lseQ = new float[rows], lseF = new float[rows], lossQ = new float[rows], lossF = new float[rows];
        var rq = QuantLmHead.Forward(x, q, targets, lseQ, rows, chunk, lossQ);
        var rf = CrossEntropy.LmHeadForward<float>(x, wide, targets, lseF, rows, c, v, chunk, lossF);
        Assert.Equal(rf.Count, rq.Count);
        Assert.Equal(rows - 1, rq.Count);
        Assert.True(Math.Abs(rq.LossSum - rf.LossSum) <= 1e-5 * Math.Abs(rf.LossSum), $"loss {rq.LossSum} vs {rf.LossSum}");
        for (int r = 0; r < rows; r++) Assert.True(Math.Abs(lseQ[r] - lseF[r]) <= 1e-5 * Math.Max(1, Math.Abs(lseF[r])), $"lse row {r}: {lseQ[r]} vs {lseF[r]}");

        var dxQ = Enumerable.Repeat(0.25f, rows * c).ToArray(); // accumulates
        var dxF = Enumerable.Repeat(0.25f, rows * c).ToArray();
        QuantLmHead.Backward(x, q, targets, lseQ, dxQ, rows, 0.5f, chunk);
        CrossEntropy.LmHeadBackward<float>(x, wide, targets, lseF, dxF, default, rows, c, v, 0.5f, chunk);
        double maxF = dxF.Max(d => Math.Abs(d - 0.25));
        Assert.True(maxF > 1e-3, "the gradient is not trivial");
        for (int i = 0; i < dxF.Length; i++)
            Assert.True(Math.Abs(dxQ[i] - dxF[i]) <= 1e-5 * maxF + 1e-7, $"dx[{i}] {dxQ[i]} vs {dxF[i]}");
    }

    [Fact]
    public void RowRangeViewReadsTheSameBytesAndChecksItsRange()
    {
        var (q, wide) = Head(QuantFormat.NF4, 50, 64, 3);
        using var _ = q;
        var view = q.RowRange(7, 11);
        Assert.Equal(11, view.Rows);
        Assert.Equal(q.Bytes.Slice(7 * q.RowBytes, 11 * q.RowBytes).ToArray(), view.Bytes.ToArray());
        Assert.Equal(wide.AsSpan(7 * 64, 11 * 64).ToArray(), view.Dequantize());
        Assert.Equal(wide.AsSpan(9 * 64, 2 * 64).ToArray(), view.RowRange(2, 2).Dequantize());
        view.Dispose(); // frees nothing
        Assert.Equal(wide, q.Dequantize());
        Assert.Throws<ArgumentOutOfRangeException>(() => q.RowRange(45, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => q.RowRange(-1, 2));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void QuantizedTablesGiveTheLossLookupAndLogitsOfTheDequantizedModel(bool tied)
    {
        var cfg = ModelQuantizerTests.Config(tied: tied);
        using var model = ExportTestUtil.Random(cfg, 4);
        var report = ModelQuantizer.Quantize(model, QuantFormat.NF4, includeEmbeddings: true);
        Assert.Equal(14, report.Layers);
        Assert.NotNull((model.Embedding as QuantizedEmbedding)?.Matrix);
        Assert.NotNull((model.Head as QuantizedEmbedding)?.Matrix);
        Assert.Equal(tied, ReferenceEquals((model.Embedding as QuantizedEmbedding)?.Matrix, (model.Head as QuantizedEmbedding)?.Matrix));
        Assert.Equal(tied, model.TiedHead);
        Assert.Equal(DType.U8, model.Embed.Value.DType);
        Assert.Same(model.Embed, model.Parameters[LlamaNames.Embed]);
        Assert.All(model.Parameters, p => Assert.False(p.Trainable));
        long tableBytes = (tied ? 1 : 2) * 300L * QuantFormat.NF4.RowBytes(64);
        Assert.Equal(tableBytes, model.Parameters.Where(p => p.Name is LlamaNames.Embed or LlamaNames.LmHead).Sum(p => p.Value.ByteLength));

        // the twin: the same network with every quantized tensor as a plain F32 weight of its dequantized values
        using var twin = ExportTestUtil.Random(cfg, 1);
        foreach (var p in twin.Parameters)
        {
            var layer = (model).Projections().Select(x => x.Layer).OfType<QuantizedLinear>().FirstOrDefault(l => l.Name + ".weight" == p.Name);
            float[] values = layer is not null ? layer.Weight.Dequantize()
                : p.Name == LlamaNames.Embed ? ((QuantizedEmbedding)model.Embedding).Matrix.Dequantize()
                : p.Name == LlamaNames.LmHead ? ((QuantizedEmbedding)model.Head).Matrix.Dequantize()
                : model.Parameters[p.Name].Value.ToFloatArray();
            values.CopyTo(p.Value.Span<float>());
        }
        int[] tokens = [5, 299, 0, 17, 17, 120, 64, 3];
        int[] targets = [299, 0, 17, CrossEntropy.IgnoreIndex, 120, 64, 3, 9];
        using (var tape = new Tape())
        {
            var e = tape.Embedding((model.Embedding as QuantizedEmbedding)?.Matrix!, tokens);
            Assert.False(e.RequiresGrad);
            var rows = e.Value.ToFloatArray();
            var expected = ((QuantizedEmbedding)model.Embedding).Matrix.Dequantize();
            for (int t = 0; t < tokens.Length; t++)
                Assert.Equal(expected.AsSpan(tokens[t] * 64, 64).ToArray(), rows.AsSpan(t * 64, 64).ToArray());
            Assert.Throws<ArgumentOutOfRangeException>(() => tape.Embedding((model.Embedding as QuantizedEmbedding)?.Matrix!, [300]));
        }
        using (var tape = new Tape())
        {
            double a = model.Loss(tape, tokens, targets, 2, 4, vocabChunk: 64).Value.ToFloatArray()[0];
            double b = twin.Loss(tape, tokens, targets, 2, 4, vocabChunk: 64).Value.ToFloatArray()[0];
            Assert.True(Math.Abs(a - b) <= 1e-5 * Math.Abs(b), $"loss {a} vs {b}");
        }
        var la = ExportTestUtil.Logits(model, ExportTestUtil.Prompt);
        var lb = ExportTestUtil.Logits(twin, ExportTestUtil.Prompt);
        Assert.True(ExportTestUtil.MaxAbsDiff(la, lb) < 1e-3, $"max |Δlogit| {ExportTestUtil.MaxAbsDiff(la, lb)}");
    }

    [Theory]
    [InlineData(QuantFormat.NF4, true)]
    [InlineData(QuantFormat.Q8_0, false)]
    public void QLoraOverAQuantizedTiedTableLowersTheLoss(QuantFormat format, bool checkpointing)
    {
        using var model = DecoderModel.CreateRandom(ModelQuantizerTests.Config(tied: true), 8, std: 0.1f);
        ModelQuantizer.Quantize(model, format, includeEmbeddings: true);
        byte[] table = ((QuantizedEmbedding)model.Head).Matrix.Bytes.ToArray();
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllLlamaProjections, InitSeed = 2 });
        model.ActivationCheckpointing = checkpointing;
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
        Assert.Equal(table, ((QuantizedEmbedding)model.Head).Matrix.Bytes.ToArray());
    }

    [Theory]
    [InlineData(true, QuantFormat.NF4)]
    [InlineData(false, QuantFormat.Q8_0)]
    public void SafetensorsRoundTripKeepsTheTablesQuantized(bool tied, QuantFormat format)
    {
        var cfg = ModelQuantizerTests.Config(tied: tied);
        using var model = ExportTestUtil.Random(cfg, 6);
        ModelQuantizer.Quantize(model, format, includeEmbeddings: true);
        using var dir = new TempDir();
        string folder = dir.File("q");
        QuantizedCheckpoint.Save(model, folder);
        ByteTokenizer.WriteMarker(folder);
        using (var f = EdgeTune.Formats.SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors")))
        {
            Assert.Contains(f.Tensors, x => x.Name == LlamaNames.Embed + QuantizedCheckpoint.Suffix);
            Assert.DoesNotContain(f.Tensors, x => x.Name == LlamaNames.Embed);
            Assert.Equal(!tied, f.Tensors.Any(x => x.Name == LlamaNames.LmHead + QuantizedCheckpoint.Suffix));
        }
        using var loaded = ModelLoader.Load(folder);
        var lm = (DecoderModel)loaded.Model;
        Assert.Equal(format, (lm.Embedding as QuantizedEmbedding)?.Matrix!.Format);
        Assert.Equal(tied, lm.TiedHead);
        Assert.Equal(((QuantizedEmbedding)model.Head).Matrix.Bytes.ToArray(), (lm.Head as QuantizedEmbedding)?.Matrix!.Bytes.ToArray());
        int[] ids = ExportTestUtil.Prompt;
        double d = ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(model, ids), ExportTestUtil.Logits(lm, ids));
        Assert.True(d < 1e-4, $"max |Δlogit| {d}");

        // widened on load: a float table of the same values
        using var wide = ModelLoader.Load(folder, options: new ModelLoadOptions(KeepQuantized: false));
        var wm = (DecoderModel)wide.Model;
        Assert.Null((wm.Embedding as QuantizedEmbedding)?.Matrix);
        Assert.Equal(((QuantizedEmbedding)model.Embedding).Matrix.Dequantize(), wm.Embed.Value.ToFloatArray());
    }

    [Fact]
    public void MemoryPlannerCountsTheQuantizedTable()
    {
        var cfg = Formats.Export.LlamaCppParityTests.SmolLm2Config(30);
        var nf4 = new MemoryPlanRequest { Model = cfg, LoraRank = 8, ActivationCheckpointing = true, BaseDType = DType.BF16, BaseQuantization = QuantFormat.NF4 };
        var withTable = nf4 with { QuantizedEmbeddings = true };
        long saving = 49152L * 576 * 2 - 49152L * QuantFormat.NF4.RowBytes(576);
        Assert.Equal(saving, MemoryPlanner.Estimate(nf4).Weights - MemoryPlanner.Estimate(withTable).Weights);
    }
}
