using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tests.Formats;
using EdgeTune.Tests.Formats.Export;
using EdgeTune.Training;

namespace EdgeTune.Tests.Models;

/// <summary>Every family's block, written once, checked the same ways: gradients against central differences in double
/// precision (LoRA on every projection), inference (prefill, one-token decode) against the tape forward, the HF and
/// GGUF round trips, and the memory planner against the measured tensor peak.</summary>
public class FamilyTests
{
    /// <summary>Tiny configs with every feature of the family switched on.</summary>
    public static HfConfig Tiny(string family, int layers = 3)
    {
        var common = new HfConfig
        {
            ModelType = family, HiddenSize = 8, IntermediateSize = 7, NumHiddenLayers = layers, NumAttentionHeads = 2,
            NumKeyValueHeads = 1, HeadDim = 4, VocabSize = 11, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 32,
            TieWordEmbeddings = family != "phi3",
        };
        return family switch
        {
            "llama" => common,
            "qwen3" => common with { HeadDim = 6 }, // head_dim ≠ hidden / heads
            "gemma3_text" => (common with { SlidingWindow = 2, HiddenAct = "gelu_pytorch_tanh" }).WithRaw(
                ("layer_types", Enumerable.Range(0, layers).Select(i => i % 2 == 0 ? "sliding_attention" : "full_attention").ToArray()),
                ("query_pre_attn_scalar", 3.0), ("rope_local_base_freq", 100.0)),
            "phi3" => common.WithRaw(("partial_rotary_factor", 0.5)),
            _ => throw new ArgumentException(family),
        };
    }

    public static IEnumerable<object[]> Families => [["llama"], ["qwen3"], ["gemma3_text"], ["phi3"]];

    private static DecoderModel Random(HfConfig cfg, DType dtype = DType.F32, bool trainable = false)
    {
        var model = DecoderModel.CreateRandom(cfg, seed: 5, std: 0.3f, trainable: trainable, dtype: dtype);
        var rng = new Rng(9);
        foreach (var p in model.Parameters.Matching("*norm*"))
        {
            if (p.Value.DType == DType.F64) { var v = p.Value.Span<double>(); for (int i = 0; i < v.Length; i++) v[i] += 0.3 * rng.NextGaussian(); }
            else { var v = p.Value.Span<float>(); for (int i = 0; i < v.Length; i++) v[i] += 0.3f * (float)rng.NextGaussian(); }
        }
        return model;
    }

    private static readonly int[] Tokens = [1, 4, 7, 2, 9, 3, 5, 10];
    private static readonly int[] Targets = [4, 7, 2, -100, 3, 10, 6, 1];

    [Theory]
    [MemberData(nameof(Families))]
    public void BlockGradientsWithLoraMatchCentralDifferencesInDouble(string family)
    {
        using var model = Random(Tiny(family), DType.F64);
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 3, TargetModules = LoraConfig.AllProjections });
        Adapters.AdapterTestUtil.RandomizeB(adapter, 3, std: 0.5);
        foreach (var p in model.Parameters.Matching("model.layers.*norm*")) p.Trainable = true; // the family's norms train too
        var all = adapter.Parameters.Concat(model.Parameters).ToList();
        int n = GradCheck.Check(all, tape => model.Loss(tape, Tokens, Targets, batch: 2, time: 4), h: 1e-6, rtol: 1e-5, atol: 1e-8);
        Assert.True(n > adapter.ParameterCount, $"{family}: only {n} values checked");
        // every projection of the block carries an adapter (fused ones included)
        Assert.All(model.Projections(), p => Assert.IsType<LoraLinear>(p.Layer));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void PrefillAndOneTokenDecodeEqualTheTrainingForward(string family)
    {
        var cfg = Tiny(family);
        using var model = Random(cfg);
        int t = Tokens.Length, v = cfg.VocabSize;
        // training forward (tape) → per-row cross-entropy equals that of the inference logits
        using var tape = new Tape { IsRecording = false };
        double loss = model.Loss(tape, Tokens, Targets, 1, t).Item();
        var prefill = new float[t * v];
        using (var cache = model.CreateCache(t)) model.Forward(Tokens, cache, prefill);
        double expected = 0;
        int counted = 0;
        for (int i = 0; i < t; i++)
        {
            if (Targets[i] < 0) continue;
            var row = prefill.AsSpan(i * v, v);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float x in row) max = Math.Max(max, x);
            foreach (float x in row) sum += Math.Exp(x - max);
            expected += max + Math.Log(sum) - row[Targets[i]];
            counted++;
        }
        Assert.True(Math.Abs(expected / counted - loss) <= 1e-5, $"{family}: tape loss {loss} vs {expected / counted} from inference logits");
        // one token at a time through the cache gives the same rows
        using var c2 = model.CreateCache(t);
        var one = new float[v];
        for (int i = 0; i < t; i++)
        {
            model.Forward([Tokens[i]], c2, one);
            for (int j = 0; j < v; j++) Assert.True(Math.Abs(prefill[i * v + j] - one[j]) <= 1e-5, $"{family}: row {i} logit {j}: prefill {prefill[i * v + j]} vs decode {one[j]}");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Families))]
    public void SafetensorsAndGgufRoundTripsKeepTheLogits(string family)
    {
        var cfg = Tiny(family);
        using var model = Random(cfg);
        using var dir = new TempDir();
        float[] ours = ExportTestUtil.Logits(model, Tokens);
        ModelExporter.ExportSafetensors(model, dir.File("hf"));
        using (var back = ExportTestUtil.LoadBack(dir.File("hf")))
        {
            Assert.Equal(model.Family, back.Family);
            Assert.True(ExportTestUtil.MaxAbsDiff(ours, ExportTestUtil.Logits(back, Tokens)) <= 1e-6);
        }
        var tok = EdgeTune.Text.Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        var padded = cfg with { VocabSize = Math.Max(cfg.VocabSize, tok.VocabSize) };
        if (family == "gemma3_text")
        {
            // llama.cpp fixes Gemma 3's layer pattern (every 6th global), local rope base and attention scale: other settings are refused by name
            using (var odd = Random(padded))
                Assert.Contains("every 6th layer", Assert.Throws<NotSupportedException>(() => ModelExporter.ExportGguf(odd, tok, dir.File("odd.gguf"))).Message);
            Assert.False(File.Exists(dir.File("odd.gguf")));
            padded = (padded with { NumHiddenLayers = 7 }).WithRaw(("layer_types", null), ("rope_local_base_freq", 10000.0), ("query_pre_attn_scalar", 4.0));
        }
        using var big = Random(padded);
        ModelExporter.ExportGguf(big, tok, dir.File("m.gguf"));
        using var g = ExportTestUtil.LoadBack(dir.File("m.gguf"));
        Assert.Equal(big.Family, g.Family);
        Assert.True(ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(big, Tokens), ExportTestUtil.Logits(g, Tokens)) <= 1e-5);
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void MemoryPlanIsWithin15PercentOfTheMeasuredTensorPeak(string family)
    {
        var cfg = Tiny(family, layers: 2) with { HiddenSize = 64, IntermediateSize = 172, HeadDim = 16, NumAttentionHeads = 4, NumKeyValueHeads = 2, VocabSize = 301 };
        int b = 2, t = 32;
        long measured;
        using (var scope = TensorMemory.Track())
        {
            using (var model = DecoderModel.CreateRandom(cfg, seed: 3, std: 0.05f, trainable: true))
            using (var opt = new AdamW(model.Parameters))
            {
                var rng = new Rng(4);
                var tokens = new int[b * t];
                var targets = new int[b * t];
                for (int i = 0; i < tokens.Length; i++) { tokens[i] = rng.NextInt(cfg.VocabSize); targets[i] = rng.NextInt(cfg.VocabSize); }
                using (var tape = new Tape()) tape.Backward(model.Loss(tape, tokens, targets, b, t));
                opt.Step();
            }
            measured = scope.PeakBytes;
        }
        var plan = MemoryPlanner.Estimate(new MemoryPlanRequest { Model = cfg, Method = FineTuneMethod.Full, SeqLen = t, MicroBatch = b });
        double ratio = (double)plan.TensorBytes / measured;
        Assert.True(ratio is > 0.85 and < 1.15, $"{family}: planned {plan.TensorBytes} vs measured {measured} tensor bytes (ratio {ratio:F3})");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void QloraOnAnNf4BaseLearnsAFixedBatch(string family)
    {
        // widths that are multiples of NF4's 64-element blocks, so every projection is quantized
        var cfg = Tiny(family, layers: 2) with { HiddenSize = 64, IntermediateSize = 128, HeadDim = 32, VocabSize = 37 };
        using var model = Random(cfg);
        var report = EdgeTune.Compression.Quantization.ModelQuantizer.Quantize(model, EdgeTune.Tensors.Quantized.QuantFormat.NF4, includeEmbeddings: true);
        Assert.Equal(model.Projections().Count(), report.Layers);
        Assert.All(model.Projections(), p => Assert.IsType<EdgeTune.Nn.Quantized.QuantizedLinear>(p.Layer));
        using var adapter = LoraInjector.Apply(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = LoraConfig.AllProjections });
        using var opt = new AdamW(adapter.Parameters, new AdamWOptions { LearningRate = 1e-2 });
        int[] tokens = Enumerable.Range(0, 16).Select(i => (i * 7 + 3) % cfg.VocabSize).ToArray();
        int[] targets = tokens.Skip(1).Append(1).ToArray();
        double first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            adapter.Parameters.ZeroGrad();
            using var tape = new Tape();
            var loss = model.Loss(tape, tokens, targets, 2, 8);
            double l = loss.Item();
            if (step == 0) first = l;
            last = l;
            tape.Backward(loss);
            opt.Step();
        }
        Assert.True(last < 0.5 * first, $"{family}: QLoRA loss {first:F3} -> {last:F3}");
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void QuantizedCheckpointRoundTripKeepsTheLogits(string family)
    {
        // the float tensors of a quantized checkpoint cross the HF boundary like an export (Gemma's norms stored as w)
        var cfg = Tiny(family, layers: 2) with { HiddenSize = 64, IntermediateSize = 128, HeadDim = 32, VocabSize = 37 };
        using var model = Random(cfg);
        EdgeTune.Compression.Quantization.ModelQuantizer.Quantize(model, EdgeTune.Tensors.Quantized.QuantFormat.NF4);
        using var dir = new TempDir();
        EdgeTune.Compression.Quantization.QuantizedCheckpoint.Save(model, dir.File("q"));
        using var back = ExportTestUtil.LoadBack(dir.File("q"));
        Assert.All(back.Projections(), p => Assert.IsType<EdgeTune.Nn.Quantized.QuantizedLinear>(p.Layer));
        Assert.True(ExportTestUtil.MaxAbsDiff(ExportTestUtil.Logits(model, Tokens), ExportTestUtil.Logits(back, Tokens)) <= 1e-6);
    }

    [Fact]
    public void ModuleTreeHasHfPathsAndReplacesByPath()
    {
        using var model = Random(Tiny("phi3", layers: 2));
        var paths = ModuleTree.Walk(model).Select(x => x.Path).ToList();
        Assert.Contains("model.embed_tokens", paths);
        Assert.Contains("model.layers.1.self_attn.qkv_proj", paths);
        Assert.Contains("model.layers.0.mlp.gate_up_proj", paths);
        Assert.Contains("lm_head", paths);
        Assert.True(ModuleTree.Match("model.layers.*.mlp.*", "model.layers.1.mlp.down_proj"));
        Assert.False(ModuleTree.Match("model.layers.*.mlp.*", "model.layers.1.self_attn.o_proj"));
        Assert.True(ModuleTree.Match("**.o_proj", "model.layers.1.self_attn.o_proj"));
        var old = (Linear)ModuleTree.Get(model, "model.layers.1.self_attn.o_proj");
        var replacement = new Linear(old.Name, old.Weight);
        Assert.Same(old, model.SetProjection("model.layers.1.self_attn.o_proj", replacement));
        Assert.Same(replacement, model.Layers[1].Proj("self_attn.o_proj"));
        var ex = Assert.Throws<ArgumentException>(() => ModuleTree.Replace(model, "model.layers.0.self_attn", replacement));
        Assert.Contains("must be a Module", ex.Message);
        Assert.Throws<KeyNotFoundException>(() => ModuleTree.Get(model, "model.layers.0.self_attn.q_proj"));
    }

    [Fact]
    public void Phi3LongRopeRunsUpToTheOriginalContextAndRefusesBeyond()
    {
        double[] shortF = [1.0, 1.5], longF = [2.0, 4.0];
        var cfg = (Tiny("phi3", layers: 1) with { MaxPositionEmbeddings = 64, RopeScaling = new RopeScaling("longrope") })
            .WithRaw(("partial_rotary_factor", null), ("original_max_position_embeddings", 16), ("rope_scaling", System.Text.Json.JsonDocument.Parse(
                $"{{\"type\":\"longrope\",\"short_factor\":[{string.Join(",", shortF)}],\"long_factor\":[{string.Join(",", longF)}]}}").RootElement.Clone()));
        using var model = Random(cfg);
        Assert.Equal(16, model.MaxPositions);
        var (freq, factor) = model.Family.Rope(cfg, 0);
        Assert.Equal(Math.Sqrt(1 + Math.Log(4) / Math.Log(16)), factor, 12); // max 64 over original 16
        Assert.Equal(1.0 / Math.Pow(10000, 2.0 / 4) / 1.5, freq[1], 12);       // divided by the short factor
        using (var cache = model.CreateCache(16)) model.Forward(Tokens, cache, new float[model.VocabSize]);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateCache(17));
        Assert.Contains("beyond 16 is not implemented", ex.Message);
        using var tape = new Tape();
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Loss(tape, new int[17], new int[17], 1, 17));
    }

    [Fact]
    public void GemmaNormsAreStoredAsHfWeightsAndKeptAsMultipliers()
    {
        var cfg = Tiny("gemma3_text");
        using var model = Random(cfg);
        using var dir = new TempDir();
        ModelExporter.ExportSafetensors(model, dir.File("hf"));
        using var st = SafeTensorsFile.Open(Path.Combine(dir.File("hf"), "model.safetensors"));
        using var stored = st.GetTensor("model.norm.weight");
        float[] mem = model.FinalNorm.Value.ToFloatArray(), file = stored.ToFloatArray();
        for (int i = 0; i < mem.Length; i++) Assert.Equal(mem[i] - 1f, file[i], 6);
    }

    /// <summary>A Gemma 3 multimodal checkpoint (4B and up: model_type gemma3 with a text_config, the text tower under
    /// language_model.* before transformers 4.52 and model.language_model.* after, a vision tower beside it) loads its
    /// language model; the vision tensors are ignored.</summary>
    [Theory]
    [InlineData("language_model.model.", "language_model.lm_head.")]
    [InlineData("model.language_model.", "lm_head.")]
    public void Gemma3MultimodalCheckpointLoadsItsTextTower(string layerPrefix, string headPrefix)
    {
        var cfg = Tiny("gemma3_text");
        using var model = Random(cfg);
        using var dir = new TempDir();
        string plain = dir.File("plain"), wrapped = dir.File("wrapped");
        ModelExporter.ExportSafetensors(model, plain);
        Directory.CreateDirectory(wrapped);
        var text = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(plain, "config.json")))!.AsObject();
        text.Remove("architectures");
        var root = new System.Text.Json.Nodes.JsonObject
        {
            ["architectures"] = new System.Text.Json.Nodes.JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["text_config"] = text,
            ["vision_config"] = new System.Text.Json.Nodes.JsonObject { ["hidden_size"] = 4, ["model_type"] = "siglip_vision_model" },
        };
        File.WriteAllText(Path.Combine(wrapped, "config.json"), root.ToJsonString());
        using (var st = SafeTensorsFile.Open(Path.Combine(plain, "model.safetensors")))
        {
            var renamed = new List<KeyValuePair<string, Tensor>>();
            foreach (var t in st.Tensors)
            {
                string name = t.Name.StartsWith("model.", StringComparison.Ordinal) ? layerPrefix + t.Name["model.".Length..] : headPrefix + t.Name["lm_head.".Length..];
                renamed.Add(new(name, st.GetTensor(t.Name)));
            }
            using var vision = Tensor.Zeros(DType.F32, [4, 3], "vision");
            renamed.Add(new("vision_tower.vision_model.embeddings.patch_embedding.weight", vision));
            SafeTensorsWriter.Write(Path.Combine(wrapped, "model.safetensors"), renamed);
        }
        var reader = CheckpointReader.Open(wrapped);
        Assert.IsType<TextTowerCheckpoint>(reader);
        Assert.DoesNotContain(reader.Tensors, t => t.Name.Contains("vision", StringComparison.Ordinal));
        using var d = DecoderModel.Load(reader, CheckpointReader.ConfigFor(reader));
        Assert.Equal("gemma3_text", d.Config.ModelType);
        float[] expected = ExportTestUtil.Logits(model, Tokens), actual = ExportTestUtil.Logits(d, Tokens);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    /// <summary>transformers saves a sub-config as its differences from the class defaults: a gemma3 text_config with only
    /// the sizes gets Gemma3TextConfig's head counts, head size, vocabulary and rope settings.</summary>
    [Fact]
    public void Gemma3TextConfigGetsTheTransformersDefaults()
    {
        var c = HfConfig.Parse("""
            {"model_type": "gemma3", "torch_dtype": "bfloat16",
             "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
                             "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
             "vision_config": {"hidden_size": 1152}}
            """);
        Assert.Equal(("gemma3_text", 2560, 10240, 34), (c.ModelType, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers));
        Assert.Equal((8, 4, 256, 262208), (c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize));
        Assert.Equal((1e6, 1024, true, "bfloat16"), (c.RopeTheta, c.SlidingWindow!.Value, c.TieWordEmbeddings, c.TorchDtype));
        Assert.Equal(8.0, c.RopeScaling!.Factor);
        var s = EdgeTune.Models.Gemma3.Gemma3Settings.Of(c);
        Assert.Equal((256.0, 10000.0), (s.QueryPreAttnScalar, s.LocalRopeTheta));
        Assert.Equal([true, true, true, true, true, false], s.SlidingLayers.Take(6));
        var ex = Assert.Throws<CheckpointFormatException>(() => HfConfig.Parse("""{"model_type": "llava", "text_config": {"hidden_size": 8}}"""));
        Assert.Contains("text_config names no model_type", ex.Message);
    }
}
