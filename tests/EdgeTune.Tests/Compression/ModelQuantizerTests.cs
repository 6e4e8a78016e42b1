using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Text;

namespace EdgeTune.Tests.Compression;

public class ModelQuantizerTests
{
    /// <summary>GQA, every projection input a multiple of 64 (NF4's block), odd vocab.</summary>
    internal static HfConfig Config(bool bias = false, bool tied = false) => new()
    {
        ModelType = bias ? "qwen2" : "llama", HiddenSize = 64, IntermediateSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 300, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 64,
        TieWordEmbeddings = tied, AttentionBias = bias, BosTokenId = 1, EosTokenIds = [2],
    };

    internal static Llama2cTokenizer TinyTokenizer(int n)
    {
        var pieces = new string[n];
        pieces[0] = "<unk>"; pieces[1] = "\n<s>\n"; pieces[2] = "\n</s>\n";
        for (int i = 0; i < 256; i++) pieces[3 + i] = $"<0x{i:X2}>";
        for (int i = 259; i < n; i++) pieces[i] = i % 2 == 0 ? $" w{i}" : $"w{i}";
        var scores = Enumerable.Range(0, n).Select(i => i < 259 ? 0f : -(float)(i - 259)).ToArray();
        return new Llama2cTokenizer(pieces, scores, 8);
    }

    private static bool Available(QuantFormat f)
    {
        try { QuantizedMatrix.Quantize(new float[64], 1, 64, f).Dispose(); return true; }
        catch (NotImplementedException) { return false; }
    }

    public static TheoryData<QuantFormat> AllFormats => [QuantFormat.Q8_0, QuantFormat.Q4_0, QuantFormat.NF4, QuantFormat.Int8];

    /// <summary>The same model with every projection replaced by a plain Linear over its dequantized weight.</summary>
    private static DecoderModel DequantizedTwin(DecoderModel q, RopeStyle style)
    {
        var twin = ExportTestUtil.Random(q.Config, 1, style);
        foreach (var p in twin.Parameters)
        {
            var src = q.Parameters[p.Name].Value;
            var layer = (q).Projections().Select(x => x.Layer).OfType<QuantizedLinear>().FirstOrDefault(l => l.Name + ".weight" == p.Name);
            float[] values = layer is not null ? layer.Weight.Dequantize() : src.ToFloatArray();
            values.CopyTo(p.Value.Span<float>());
        }
        return twin;
    }

    [SkippableTheory]
    [MemberData(nameof(AllFormats))]
    public void QuantizedModelEqualsLinearOverDequantizedWeightsAndShrinks(QuantFormat format)
    {
        Skip.IfNot(Available(format), $"{format} is not implemented in this tree");
        var cfg = Config(bias: true);
        using var model = ExportTestUtil.Random(cfg, 3);
        model.Parameters.Matching("*.bias").ToList().ForEach(p => new Rng(4).FillGaussian(p.Value.Span<float>(), 0, 0.3f));
        long before = ModelQuantizer.SizeInBytes(model);
        var report = ModelQuantizer.Quantize(model, format);
        Assert.Equal(14, report.Layers);
        Assert.Empty(report.Skipped);
        Assert.Equal(before, report.BytesBefore);
        long projBytes = 2L * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64) * 4;
        long expectedQuant = 0;
        foreach (var (_, l) in model.Projections())
            expectedQuant += (long)l.OutFeatures * format.RowBytes(l.InFeatures);
        Assert.Equal(before - projBytes + expectedQuant, report.BytesAfter);
        Assert.All((model).Projections(), p => Assert.IsType<QuantizedLinear>(p.Layer));
        Assert.All(model.Parameters, p => Assert.False(p.Trainable));

        using var twin = DequantizedTwin(model, model.RopeStyle);
        var a = ExportTestUtil.Logits(model, ExportTestUtil.Prompt.Select(i => i % 300).ToArray());
        var b = ExportTestUtil.Logits(twin, ExportTestUtil.Prompt.Select(i => i % 300).ToArray());
        Assert.True(ExportTestUtil.MaxAbsDiff(a, b) < 1e-3, $"max diff {ExportTestUtil.MaxAbsDiff(a, b)}");
    }

    [SkippableTheory]
    [MemberData(nameof(AllFormats))]
    public void SafetensorsRoundTripGivesSameLogits(QuantFormat format)
    {
        Skip.IfNot(Available(format), $"{format} is not implemented in this tree");
        foreach (var style in new[] { RopeStyle.HalfSplit, RopeStyle.Interleaved })
        {
            using var model = ExportTestUtil.Random(Config(), 5, style);
            ModelQuantizer.Quantize(model, format);
            using var dir = new TempDir();
            string folder = dir.File("q");
            QuantizedCheckpoint.Save(model, folder);
            ByteTokenizer.WriteMarker(folder);
            Assert.True(File.Exists(Path.Combine(folder, "config.json")));
            using var f = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors"));
            Assert.Contains(f.Tensors, t => t.Name == "model.layers.0.self_attn.q_proj.weight.q");
            Assert.Contains(format.Info().Name, f.Metadata["model.layers.1.mlp.down_proj.weight.q"]);

            using var loaded = ModelLoader.Load(folder);
            var lm = (DecoderModel)loaded.Model;
            Assert.All((lm).Projections(), p => Assert.Equal(format, Assert.IsType<QuantizedLinear>(p.Layer).Format));
            int[] ids = ExportTestUtil.Prompt.Select(i => i % 300).ToArray();
            double d = ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(model, ids), ExportTestUtil.Logits(lm, ids));
            Assert.True(d < 1e-4, $"{format} {style}: max |Δlogit| {d}");

            // loading without keeping quantized widens to F32 with the same function
            using var wide = ModelLoader.Load(folder, options: new ModelLoadOptions(KeepQuantized: false));
            Assert.All(((DecoderModel)wide.Model).Projections(), p => Assert.IsType<Linear>(p.Layer));
            Assert.True(ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(model, ids), ExportTestUtil.Logits((DecoderModel)wide.Model, ids)) < 1e-4);
        }
    }

    [Theory]
    [InlineData(QuantFormat.Q8_0, DType.Q8_0)]
    [InlineData(QuantFormat.Q4_0, DType.Q4_0)]
    public void GgufExportKeepsBlocksAndLoadsQuantized(QuantFormat format, DType dtype)
    {
        using var model = ExportTestUtil.Random(Config(), 6);
        ModelQuantizer.Quantize(model, format);
        var blocks = ((QuantizedLinear)model.Layers[1].Proj("mlp.up_proj")).Weight.Bytes.ToArray();
        var tok = TinyTokenizer(300);
        using var dir = new TempDir();
        string path = dir.File("m.gguf");
        ModelExporter.ExportGguf(model, tok, path, dtype);
        using (var g = GgufFile.Open(path))
        {
            using var up = g.GetTensor("blk.1.ffn_up.weight");
            Assert.Equal(dtype, up.DType);
            Assert.Equal(blocks, up.Bytes.ToArray());
        }
        using var reader = CheckpointReader.Open(path);
        using var loaded = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
        Assert.All((loaded).Projections(), p => Assert.Equal(format, Assert.IsType<QuantizedLinear>(p.Layer).Format));
        Assert.Equal(blocks, ((QuantizedLinear)loaded.Layers[1].Proj("mlp.up_proj")).Weight.Bytes.ToArray());
        Assert.True(((QuantizedLinear)loaded.Layers[1].Proj("mlp.up_proj")).Storage.Value.IsReadOnly, "the blocks should be a view of the mapped file, not a copy");
        Assert.True(((QuantizedLinear)loaded.Layers[0].Proj("self_attn.q_proj")).Storage.Value.IsReadOnly);
        using var reader2 = CheckpointReader.Open(path);
        using var widened = DecoderModel.Load(reader2, CheckpointReader.ConfigFor(reader2), new ModelLoadOptions(KeepQuantized: false));
        Assert.IsType<Linear>(widened.Layers[0].Proj("self_attn.q_proj"));
        int[] ids = ExportTestUtil.Prompt.Select(i => i % 300).ToArray();
        double d = ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(loaded, ids), ExportTestUtil.Logits(widened, ids));
        Assert.True(d < 1e-4, $"max |Δlogit| {d}");
    }

    [Fact]
    public void LayersWhoseWidthIsNotABlockMultipleStayFloat()
    {
        using var model = DecoderModel.CreateRandom(Models.LlamaModelTests.SmallConfig(), 2); // hidden 24, FFN 37
        var report = ModelQuantizer.Quantize(model, QuantFormat.Q8_0);
        Assert.Equal(0, report.Layers);
        Assert.Equal(14, report.Skipped.Count);
        Assert.Equal(report.BytesBefore, report.BytesAfter);
    }
}
