using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Text;
using LLama;
using LLama.Native;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Compression;

/// <summary>
/// PTQ against llama.cpp (LLamaSharp 0.30.0, CPU): (a) llama.cpp's quantizer writes the same Q8_0/Q4_0 blocks as
/// <see cref="QuantizedMatrix.Quantize(Tensor, QuantFormat)"/> for every block-quantized tensor of a random Llama;
/// (b) the Q4_0 GGUF that <c>edgetune quantize</c> writes runs in llama.cpp and predicts the same next tokens as
/// EdgeTune's own Q4_0 inference over the same file.
/// </summary>
[Collection(LlamaCppCollection.Name)]
public sealed class LlamaCppQuantTests(ITestOutputHelper output)
{
    /// <summary>Dims multiple of 32 everywhere: hidden 128 (4 heads of 32, 2 kv heads), FFN 256, vocab 320.</summary>
    private static HfConfig Config() => new()
    {
        ModelType = "llama", HiddenSize = 128, IntermediateSize = 256, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, HeadDim = 32, VocabSize = 320, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 128,
        TieWordEmbeddings = false, BosTokenId = 1, EosTokenIds = [2],
    };

    [SkippableTheory]
    [InlineData(QuantFormat.Q8_0, DType.Q8_0, LLamaFtype.MOSTLY_Q8_0)]
    [InlineData(QuantFormat.Q4_0, DType.Q4_0, LLamaFtype.MOSTLY_Q4_0)]
    public void LlamaCppQuantizerWritesOurBlocks(QuantFormat format, DType dtype, LLamaFtype ftype)
    {
        LlamaCpp.RequireNative();
        using var model = DecoderModel.CreateRandom(Config(), 21, std: 0.05f);
        using var dir = new TempDir();
        string f32 = dir.File("m-f32.gguf"), quant = dir.File($"m-{format}.gguf");
        ModelExporter.ExportGguf(model, ModelQuantizerTests.TinyTokenizer(320), f32, DType.F32);
        LlamaCpp.TakeLog();
        bool ok = LLamaQuantizer.Quantize(f32, quant, ftype, nthread: 1);
        string log = LlamaCpp.TakeLog();
        Assert.True(ok, $"llama.cpp failed to quantize to {ftype}: {log[Math.Max(0, log.Length - 2000)..]}");

        int compared = 0, projections = 0;
        long blocks = 0;
        using var src = GgufFile.Open(f32);
        using var q = GgufFile.Open(quant);
        foreach (var info in q.TensorInfos)
        {
            if (info.DType != dtype) continue;
            using var theirs = q.GetTensor(info.Name);
            using var w = src.GetTensor(info.Name);
            using var ours = QuantizedMatrix.Quantize(w, format);
            Assert.True(ours.Bytes.SequenceEqual(theirs.Bytes), $"{info.Name}: {format} blocks differ from llama.cpp's");
            compared++;
            blocks += ours.ByteLength / format.Info().BlockBytes;
            if (info.Name.StartsWith("blk.", StringComparison.Ordinal)) projections++;
        }
        output.WriteLine($"{format}: {compared} tensors ({projections} decoder projections), {blocks} blocks bit-identical with llama.cpp");
        Assert.Equal(14, projections);
    }

    [SkippableFact]
    public void Stories260KQ4_0FromEdgeTuneRunsInLlamaCppWithSameNextTokens()
    {
        string bin = TestAssets.Require("stories260K/stories260K.bin");
        var tok = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        LlamaCpp.RequireNative();
        using var dir = new TempDir();
        string path = dir.File("stories260K-q4_0.gguf");
        using (var reader = CheckpointReader.Open(bin))
        using (var model = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader)))
        {
            ModelQuantizer.Quantize(model, QuantFormat.Q4_0); // what `edgetune quantize --dtype q4_0` does
            ModelExporter.ExportGguf(model, tok, path, DType.Q4_0);
        }
        using var qreader = CheckpointReader.Open(path);
        using var ours = DecoderModel.Load(qreader, CheckpointReader.ConfigFor(qreader));
        Assert.IsType<QuantizedLinear>(ours.Layers[0].Proj("self_attn.q_proj"));
        int v = ours.VocabSize;
        string[] prompts =
        [
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
            "Tom had a big red ball. He wanted to share it with his friend Sue, but",
            "The sun was shining and the birds were singing. A little dog ran to the tree",
        ];
        int agree = 0, total = 0;
        double worst = 0;
        foreach (string p in prompts)
        {
            int[] ids = tok.Encode(p, addBos: true);
            float[] a = ExportTestUtil.Logits(ours, ids);
            float[] b = LlamaCpp.Logits(path, ids, v);
            for (int i = 0; i < ids.Length; i++)
            {
                if (LlamaCpp.ArgMax(a.AsSpan(i * v, v)) == LlamaCpp.ArgMax(b.AsSpan(i * v, v))) agree++;
                total++;
                for (int j = 0; j < v; j++) worst = Math.Max(worst, Math.Abs((double)a[i * v + j] - b[i * v + j]));
            }
        }
        output.WriteLine($"stories260K Q4_0 (edgetune quantize): next-token agreement {agree}/{total} ({100.0 * agree / total:F1}%), max |Δlogit| {worst:F4}");
        // llama.cpp rounds activations to 8 bits inside its Q4_0 dot products; EdgeTune keeps them in float
        Assert.True(agree >= total * 0.95, $"only {agree}/{total} greedy next tokens agree");
        Assert.True(worst < 0.5, $"max |Δlogit| {worst}");
    }
}
