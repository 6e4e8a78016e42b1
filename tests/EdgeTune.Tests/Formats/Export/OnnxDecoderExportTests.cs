using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Tests.Models;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Formats.Export;

/// <summary>
/// Decoders exported to ONNX (the family's block run on <see cref="OnnxForward"/>) and run by ONNX Runtime: logits equal
/// ours through a prefill and through one-token decodes fed with the graph's own present keys/values; greedy text from
/// ONNX Runtime with the KV cache equals ours; the int8 QDQ export's error is measured.
/// </summary>
public sealed class OnnxDecoderExportTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Families => FamilyTests.Families;

    [Theory]
    [MemberData(nameof(Families))]
    public void EveryFamilyMatchesOnnxRuntimeThroughPrefillAndDecode(string family)
    {
        var cfg = FamilyTests.Tiny(family, layers: 3) with { HiddenSize = 48, IntermediateSize = 37, NumAttentionHeads = 6, NumKeyValueHeads = 2, HeadDim = 8, VocabSize = 67 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 31, std: 0.2f);
        PerturbNorms(model, 32);
        using var dir = new TempDir();
        var result = OnnxExporter.ExportDecoder(model, dir.File("onnx"), new OnnxExportOptions(MaxPositions: 32));
        using var session = new InferenceSession(result.ModelPath);
        int[] prompt = [1, 5, 60, 33, 7, 0, 66, 12, 9];
        var (prefill, max) = CompareGreedy(model, session, prompt, steps: 6);
        output.WriteLine($"{family}: {result.Nodes} nodes; prefill max |Δlogit| {prefill:E2}, decode steps max {max:E2}");
        Assert.True(prefill <= 1e-4, $"prefill logits differ by {prefill}");
        Assert.True(max <= 1e-4, $"decode logits differ by {max}");
    }

    [Fact]
    public void SmolLm2ShapedDecoderGreedyTextFromOnnxRuntimeEqualsOurs()
    {
        // SmolLM2-135M's real shapes (hidden 576, 9 heads over 3 kv heads of 64, FFN 1536, vocab 49152, tied), 2 of 30 layers.
        var cfg = new HfConfig
        {
            ModelType = "llama", HiddenSize = 576, IntermediateSize = 1536, NumHiddenLayers = 2, NumAttentionHeads = 9,
            NumKeyValueHeads = 3, HeadDim = 64, VocabSize = 49152, RopeTheta = 100000, TieWordEmbeddings = true,
            MaxPositionEmbeddings = 8192, RmsNormEps = 1e-5,
        };
        using var model = DecoderModel.CreateRandom(cfg, seed: 71, std: 0.05f);
        PerturbNorms(model, 72);
        using var dir = new TempDir();
        var result = OnnxExporter.ExportDecoder(model, dir.File("onnx"), new OnnxExportOptions(MaxPositions: 512));
        using var session = new InferenceSession(result.ModelPath);
        var rng = new Rng(73);
        int[] prompt = Enumerable.Range(0, 24).Select(_ => rng.NextInt(cfg.VocabSize)).ToArray();
        var (prefill, decode) = CompareGreedy(model, session, prompt, steps: 8);
        output.WriteLine($"SmolLM2-shaped, 2 layers: prefill max |Δlogit| {prefill:E2}, decode {decode:E2}");
        Assert.True(prefill <= 1e-4 && decode <= 1e-4, $"prefill {prefill}, decode {decode}");
        Assert.Equal(Greedy(model, prompt, 12), GreedyOnnx(session, model, prompt, 12));
    }

    [Fact]
    public void InterleavedRopeAndLlama2cLayoutExport()
    {
        // GGUF and llama2.c checkpoints keep q/k rows interleaved: the graph rotates adjacent pairs for them.
        var cfg = ExportTestUtil.Config(tied: true);
        using var model = ExportTestUtil.Random(cfg, 41, RopeStyle.Interleaved);
        using var dir = new TempDir();
        var result = OnnxExporter.ExportDecoder(model, dir.File("onnx"));
        using var session = new InferenceSession(result.ModelPath);
        var (prefill, max) = CompareGreedy(model, session, ExportTestUtil.Prompt, steps: 5);
        Assert.True(prefill <= 1e-4 && max <= 1e-4, $"interleaved rope: prefill {prefill}, decode {max}");
    }

    [SkippableFact]
    public void Stories260KGreedyTextFromOnnxRuntimeEqualsOurs()
    {
        var tok = EdgeTune.Text.Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        var reader = CheckpointReader.Open(TestAssets.Require("stories260K/stories260K.bin"));
        using var model = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
        using var dir = new TempDir();
        var result = OnnxExporter.ExportDecoder(model, dir.File("onnx"));
        using var session = new InferenceSession(result.ModelPath);
        int[] prompt = [.. tok.Encode("Once upon a time", addBos: true)];
        var ours = Greedy(model, prompt, 40);
        var theirs = GreedyOnnx(session, model, prompt, 40);
        output.WriteLine($"ours:  {tok.Decode(ours.ToArray())}");
        output.WriteLine($"onnx:  {tok.Decode(theirs.ToArray())}");
        Assert.Equal(ours, theirs);
    }

    [Fact]
    public void Int8QdqExportRunsAndItsErrorIsMeasured()
    {
        var cfg = FamilyTests.Tiny("llama", layers: 2) with { HiddenSize = 64, IntermediateSize = 96, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 53 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 51, std: 0.1f);
        using var dir = new TempDir();
        var f32 = OnnxExporter.ExportDecoder(model, dir.File("f32"));
        var int8 = OnnxExporter.ExportDecoder(model, dir.File("int8"), new OnnxExportOptions(OnnxWeightFormat.Int8));
        Assert.True(new FileInfo(int8.ModelPath + ".data").Length < 0.6 * new FileInfo(f32.ModelPath + ".data").Length,
            "int8 projections take a quarter of the F32 bytes (embedding and head stay F32)");
        using var s8 = new InferenceSession(int8.ModelPath);
        int[] prompt = [1, 5, 40, 33, 7, 0, 22, 12];
        float[] ours = ExportTestUtil.Logits(model, prompt);
        float[] q = RunOnnx(s8, model, prompt, Past(model, 0), out _);
        double err = ExportTestUtil.MaxAbsDiff(ours, q), scale = ours.Max(Math.Abs);
        output.WriteLine($"int8 QDQ: max weight error {int8.MaxWeightError:E2}; logits max |Δ| {err:E2} (max |logit| {scale:F2})");
        // Every weight is within half a quantization step of itself; the logits move, but by far less than their size.
        Assert.True(int8.MaxWeightError > 0 && int8.MaxWeightError < 0.5 * 0.1 * 6 / 127 + 1e-6, $"weight error {int8.MaxWeightError}");
        Assert.True(err > 1e-6 && err < 0.05 * scale, $"int8 logits moved {err} against a logit scale of {scale}");
    }

    [Fact]
    public void Int4BlockedQdqExportRunsWithALargerErrorThanInt8()
    {
        var cfg = FamilyTests.Tiny("qwen3", layers: 2) with { HiddenSize = 64, IntermediateSize = 96, NumAttentionHeads = 4, NumKeyValueHeads = 2, HeadDim = 16, VocabSize = 53 };
        using var model = DecoderModel.CreateRandom(cfg, seed: 52, std: 0.1f);
        using var dir = new TempDir();
        var int8 = OnnxExporter.ExportDecoder(model, dir.File("int8"), new OnnxExportOptions(OnnxWeightFormat.Int8));
        var int4 = OnnxExporter.ExportDecoder(model, dir.File("int4"), new OnnxExportOptions(OnnxWeightFormat.Int4));
        int[] prompt = [1, 5, 40, 33, 7, 0, 22, 12];
        float[] ours = ExportTestUtil.Logits(model, prompt);
        using var s8 = new InferenceSession(int8.ModelPath);
        using var s4 = new InferenceSession(int4.ModelPath);
        double e8 = ExportTestUtil.MaxAbsDiff(ours, RunOnnx(s8, model, prompt, Past(model, 0), out _));
        var logits4 = RunOnnx(s4, model, prompt, Past(model, 0), out var present);
        double e4 = ExportTestUtil.MaxAbsDiff(ours, logits4);
        output.WriteLine($"int4 blocked QDQ (block {OnnxForward.Int4Block}): weight error {int4.MaxWeightError:E2}, logits max |Δ| {e4:E2}; int8: {int8.MaxWeightError:E2}, {e8:E2}");
        Assert.True(int4.MaxWeightError > int8.MaxWeightError && e4 > e8, "int4 is coarser than int8");
        // What the int4 graph computes is exactly our model with each projection replaced by its dequantized int4 weights.
        foreach (var (_, layer) in model.Projections())
        {
            var w = ((EdgeTune.Nn.Linear)layer).Weight.Value.Span<float>();
            int fin = layer.InFeatures, fout = layer.OutFeatures;
            var wt = new float[fin * fout];
            for (int o = 0; o < fout; o++) for (int i = 0; i < fin; i++) wt[i * fout + o] = w[o * fin + i];
            var (packed, scale, _) = OnnxForward.QuantizeInt4Blocks(wt, fin, fout);
            for (int o = 0; o < fout; o++)
                for (int i = 0; i < fin; i++)
                {
                    int k = i * fout + o, nibble = (packed[k / 2] >> (4 * (k % 2))) & 0xF;
                    w[o * fin + i] = (nibble >= 8 ? nibble - 16 : nibble) * scale[i / OnnxForward.Int4Block * fout + o];
                }
        }
        // Unoptimised: ONNX Runtime's default optimisations fuse DequantizeLinear(int4)+MatMul into MatMulNBits, which by
        // default also quantizes the activations to int8 (accuracy level 4), a second approximation on top of the weights.
        using var plain = new InferenceSession(int4.ModelPath, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL });
        float[] dequantized = ExportTestUtil.Logits(model, prompt);
        double exact = ExportTestUtil.MaxAbsDiff(dequantized, RunOnnx(plain, model, prompt, Past(model, 0), out _));
        output.WriteLine($"int4 graph (unoptimised) vs our model on the dequantized int4 weights: max |Δlogit| {exact:E2}; " +
            $"optimised session vs the same: {ExportTestUtil.MaxAbsDiff(dequantized, logits4):E2}");
        Assert.True(exact <= 1e-4, $"the int4 graph differs from the dequantized model by {exact}");
        // the int4 graph runs the KV cache too: one decode step
        var step = RunOnnx(s4, model, [3], present, out _);
        Assert.Equal(model.VocabSize, step.Length);
        Assert.All(step, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Int4PackingIsLowNibbleFirstAndRoundTrips()
    {
        var rng = new Rng(9);
        int rows = 45, cols = 7; // a partial last block and an odd element count
        var w = Enumerable.Range(0, rows * cols).Select(_ => (float)rng.NextGaussian()).ToArray();
        var (packed, scale, err) = OnnxForward.QuantizeInt4Blocks(w, rows, cols);
        Assert.Equal((rows * cols + 1) / 2, packed.Length);
        double worst = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                int nibble = (packed[i / 2] >> (4 * (i % 2))) & 0xF;
                int q = nibble >= 8 ? nibble - 16 : nibble;
                float s = scale[r / OnnxForward.Int4Block * cols + c];
                Assert.InRange(q, -8, 7);
                worst = Math.Max(worst, Math.Abs(w[i] - q * s));
                Assert.True(Math.Abs(w[i] - q * s) <= 0.5 * s + 1e-6, $"element ({r},{c}) is off by more than half a step");
            }
        Assert.Equal(worst, err, 6);
    }

    [Fact]
    public void AFailedExportLeavesWhatWasThere()
    {
        using var model = DecoderModel.CreateRandom(ExportTestUtil.Config(), 3);
        using var dir = new TempDir();
        string target = dir.File("out");
        OnnxExporter.ExportDecoder(model, target);
        long before = new FileInfo(Path.Combine(target, "model.onnx")).Length;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => OnnxExporter.ExportDecoder(model, target, new OnnxExportOptions(MaxPositions: 100_000)));
        Assert.Contains("MaxPositions", e.Message);
        Assert.Equal(before, new FileInfo(Path.Combine(target, "model.onnx")).Length);
        Assert.Single(Directory.GetDirectories(dir.Path)); // no temporary folder left beside it
    }

    // ---- helpers ----

    private static void PerturbNorms(DecoderModel model, ulong seed)
    {
        var rng = new Rng(seed);
        foreach (var p in model.Parameters.Matching("*norm*"))
        {
            var v = p.Value.Span<float>();
            for (int i = 0; i < v.Length; i++) v[i] += 0.3f * (float)rng.NextGaussian();
        }
    }

    /// <summary>Prefill the prompt in both, then <paramref name="steps"/> greedy one-token decodes, comparing the logits each time.</summary>
    private static (double Prefill, double Decode) CompareGreedy(DecoderModel model, InferenceSession session, int[] prompt, int steps)
    {
        int v = model.VocabSize;
        using var cache = model.CreateCache(prompt.Length + steps + 1);
        var ours = new float[prompt.Length * v];
        model.Forward(prompt, cache, ours);
        var theirs = RunOnnx(session, model, prompt, Past(model, 0), out var present);
        double prefill = ExportTestUtil.MaxAbsDiff(ours, theirs), decode = 0;
        int next = ArgMax(ours.AsSpan((prompt.Length - 1) * v, v));
        var one = new float[v];
        for (int s = 0; s < steps; s++)
        {
            model.Forward([next], cache, one);
            var o = RunOnnx(session, model, [next], present, out present);
            decode = Math.Max(decode, ExportTestUtil.MaxAbsDiff(one, o));
            next = ArgMax(one);
        }
        return (prefill, decode);
    }

    private static List<int> Greedy(DecoderModel model, int[] prompt, int steps)
    {
        int v = model.VocabSize;
        using var cache = model.CreateCache(prompt.Length + steps);
        var logits = new float[v];
        model.Forward(prompt, cache, logits);
        var outTokens = new List<int>();
        for (int s = 0; s < steps; s++)
        {
            int next = ArgMax(logits);
            outTokens.Add(next);
            model.Forward([next], cache, logits);
        }
        return outTokens;
    }

    private static List<int> GreedyOnnx(InferenceSession session, DecoderModel model, int[] prompt, int steps)
    {
        int v = model.VocabSize;
        var logits = RunOnnx(session, model, prompt, Past(model, 0), out var present);
        var last = logits.AsSpan((prompt.Length - 1) * v, v).ToArray();
        var outTokens = new List<int>();
        for (int s = 0; s < steps; s++)
        {
            int next = ArgMax(last);
            outTokens.Add(next);
            last = RunOnnx(session, model, [next], present, out present);
        }
        return outTokens;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    internal static List<DenseTensor<float>> Past(DecoderModel model, int length)
    {
        var c = model.Config;
        return Enumerable.Range(0, 2 * c.NumHiddenLayers)
            .Select(_ => new DenseTensor<float>(new float[c.NumKeyValueHeads * length * c.HeadDim], [1, c.NumKeyValueHeads, length, c.HeadDim]))
            .ToList();
    }

    /// <summary>Runs the graph on one sequence; returns logits [T, V] and the present keys/values (key, value per layer).</summary>
    internal static float[] RunOnnx(InferenceSession session, DecoderModel model, int[] ids, List<DenseTensor<float>> past, out List<DenseTensor<float>> present)
    {
        int layers = model.Config.NumHiddenLayers;
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.Select(x => (long)x).ToArray(), [1, ids.Length])),
        };
        for (int i = 0; i < layers; i++)
        {
            inputs.Add(NamedOnnxValue.CreateFromTensor($"past_key_values.{i}.key", past[2 * i]));
            inputs.Add(NamedOnnxValue.CreateFromTensor($"past_key_values.{i}.value", past[2 * i + 1]));
        }
        using var results = session.Run(inputs);
        var byName = results.ToDictionary(r => r.Name, r => r.AsTensor<float>());
        Assert.Equal([1, ids.Length, model.VocabSize], byName["logits"].Dimensions.ToArray());
        present = [];
        for (int i = 0; i < layers; i++)
        {
            var k = byName.Single(p => p.Key.StartsWith($"present.{i}.key", StringComparison.Ordinal)).Value;
            var v = byName.Single(p => p.Key.StartsWith($"present.{i}.value", StringComparison.Ordinal)).Value;
            present.Add(new DenseTensor<float>(k.ToArray(), k.Dimensions.ToArray()));
            present.Add(new DenseTensor<float>(v.ToArray(), v.Dimensions.ToArray()));
        }
        return byName["logits"].ToArray();
    }
}
