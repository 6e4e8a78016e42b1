using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Energy;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Formats;

/// <summary>The JSON files and lines the library writes (through its source-generated context): the keys each one
/// carries, in order, their values and JSON types, which nulls are written and which are left out, and how
/// non-finite numbers come out.</summary>
public class JsonFilesTests
{
    private static List<string> Keys(JsonElement o) => o.EnumerateObject().Select(p => p.Name).ToList();

    private static readonly DateTimeOffset When = new(2026, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2));

    private static EnergyStepRecord StepEnergy(double? joulesPerToken = null, double seconds = 2) =>
        new(Step: 5, Tokens: 1000, Seconds: seconds, Joules: 36, AverageWatts: 18, JoulesPerToken: joulesPerToken, CumulativeJoules: 72,
            Co2eGrams: 0.25, Estimated: true, Meter: "estimate:cpu-time", Time: When);

    [Fact]
    public void Metrics_row_without_optional_fields_is_exactly_the_old_line()
    {
        var s = new TrainingStatus(TrainingEvent.Step, 3, 10, Loss: 2.5, LearningRate: 0.001, GradNorm: double.NaN,
            TokensPerSecond: double.PositiveInfinity, Elapsed: TimeSpan.FromSeconds(1.23456), Eta: null,
            ManagedBytes: 100, WorkingSetBytes: 200, TensorBytes: 300);
        Assert.Equal(
            """{"event":"step","step":3,"total":10,"loss":2.5,"lr":0.001,"grad_norm":"NaN","tokens_per_s":"Infinity","elapsed_s":1.235,"managed_bytes":100,"rss_bytes":200,"tensor_bytes":300}""",
            JsonlMetricsSink.Format(s));
    }

    [Fact]
    public void Metrics_row_with_eval_message_and_energy_leaves_out_only_the_null_fields()
    {
        var energy = StepEnergy();
        var s = new TrainingStatus(TrainingEvent.Eval, 5, 10, Loss: null, LearningRate: 5e-4, GradNorm: null, TokensPerSecond: 100.5,
            Elapsed: TimeSpan.FromSeconds(2), Eta: TimeSpan.FromSeconds(12.34), ManagedBytes: 1, WorkingSetBytes: 2, TensorBytes: 3,
            EvalLoss: 1.25, EvalPerplexity: double.NegativeInfinity, Message: "a \"quoted\" <note>", Energy: energy);
        string line = JsonlMetricsSink.Format(s);
        Assert.DoesNotContain('\n', line);
        using var doc = JsonDocument.Parse(line);
        var o = doc.RootElement;
        Assert.Equal(["event", "step", "total", "lr", "tokens_per_s", "elapsed_s", "eta_s", "managed_bytes", "rss_bytes", "tensor_bytes",
            "eval_loss", "perplexity", "message", "joules", "wh", "avg_w", "cum_joules", "co2e_g", "estimated", "meter"], Keys(o));
        Assert.Equal("eval", o.GetProperty("event").GetString());
        Assert.Equal(5, o.GetProperty("step").GetInt64());
        Assert.Equal(10, o.GetProperty("total").GetInt64());
        Assert.Equal(5e-4, o.GetProperty("lr").GetDouble());
        Assert.Equal(100.5, o.GetProperty("tokens_per_s").GetDouble());
        Assert.Equal(2, o.GetProperty("elapsed_s").GetDouble());
        Assert.Equal(12.3, o.GetProperty("eta_s").GetDouble()); // rounded to 0.1 s
        Assert.Equal(1.25, o.GetProperty("eval_loss").GetDouble());
        Assert.Equal("-Infinity", o.GetProperty("perplexity").GetString());
        Assert.Equal("a \"quoted\" <note>", o.GetProperty("message").GetString());
        Assert.Equal(36, o.GetProperty("joules").GetDouble());
        Assert.Equal(energy.WattHours, o.GetProperty("wh").GetDouble());
        Assert.Equal(18, o.GetProperty("avg_w").GetDouble());
        Assert.Equal(72, o.GetProperty("cum_joules").GetDouble());
        Assert.Equal(0.25, o.GetProperty("co2e_g").GetDouble());
        Assert.True(o.GetProperty("estimated").GetBoolean());
        Assert.Equal("estimate:cpu-time", o.GetProperty("meter").GetString());

        // with tokens the energy carries j_per_token
        using var withTokens = JsonDocument.Parse(JsonlMetricsSink.Format(s with { Energy = StepEnergy(joulesPerToken: 0.036) }));
        Assert.Equal(0.036, withTokens.RootElement.GetProperty("j_per_token").GetDouble());
    }

    [Fact]
    public void Energy_step_record_writes_every_key_and_null_joules_per_token()
    {
        var r = StepEnergy();
        string json = r.ToJson();
        using var doc = JsonDocument.Parse(json);
        var o = doc.RootElement;
        Assert.Equal(["step", "tokens", "seconds", "joules", "wh", "avg_watts", "joules_per_token", "cum_joules", "cum_wh", "co2e_g",
            "estimated", "meter", "time"], Keys(o));
        Assert.Equal(JsonValueKind.Null, o.GetProperty("joules_per_token").ValueKind);
        Assert.Equal(r.WattHours, o.GetProperty("wh").GetDouble());
        Assert.Equal(r.CumulativeWattHours, o.GetProperty("cum_wh").GetDouble());
        Assert.Equal(18, o.GetProperty("avg_watts").GetDouble());
        Assert.Equal(When, o.GetProperty("time").GetDateTimeOffset());
        Assert.Equal("2026-03-04T05:06:07.89+02:00", o.GetProperty("time").GetString());

        // WriteJson into a caller's writer gives the same object
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) r.WriteJson(w);
        Assert.Equal(json, System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));

        using var jpt = JsonDocument.Parse(StepEnergy(joulesPerToken: 0.036).ToJson());
        Assert.Equal(0.036, jpt.RootElement.GetProperty("joules_per_token").GetDouble());
        // a non-finite figure comes out as a string rather than failing the write
        using var nan = JsonDocument.Parse(StepEnergy(seconds: double.NaN).ToJson());
        Assert.Equal("NaN", nan.RootElement.GetProperty("seconds").GetString());
    }

    [Fact]
    public void Energy_report_writes_every_key_warnings_and_indents_on_request()
    {
        var r = new EnergyReport(Steps: 4, Tokens: 0, Seconds: 10, Joules: 100, AverageWatts: 10, JoulesPerToken: null, Co2eGrams: 0.5,
            GridIntensityGramsPerKwh: 400, GridIntensityIsDefault: true, ExcludedSeconds: 1.5, ExcludedJoules: 3, Estimated: false,
            Meter: "rapl:total", MeterDescription: "CPU packages", Warnings: ["meter failed", "é <x>"]);
        string line = r.ToJson();
        Assert.DoesNotContain('\n', line);
        string indented = r.ToJson(indented: true);
        Assert.Contains("\n  \"steps\": 4,", indented.ReplaceLineEndings("\n"));
        foreach (string json in new[] { line, indented })
        {
            using var doc = JsonDocument.Parse(json);
            var o = doc.RootElement;
            Assert.Equal(["steps", "tokens", "seconds", "joules", "wh", "avg_watts", "joules_per_token", "co2e_g", "grid_g_per_kwh",
                "grid_intensity_is_default", "excluded_seconds", "excluded_joules", "estimated", "meter", "meter_description", "warnings"], Keys(o));
            Assert.Equal(JsonValueKind.Null, o.GetProperty("joules_per_token").ValueKind);
            Assert.Equal(r.WattHours, o.GetProperty("wh").GetDouble());
            Assert.Equal(400, o.GetProperty("grid_g_per_kwh").GetDouble());
            Assert.True(o.GetProperty("grid_intensity_is_default").GetBoolean());
            Assert.Equal(1.5, o.GetProperty("excluded_seconds").GetDouble());
            Assert.False(o.GetProperty("estimated").GetBoolean());
            Assert.Equal("CPU packages", o.GetProperty("meter_description").GetString());
            Assert.Equal(["meter failed", "é <x>"], o.GetProperty("warnings").EnumerateArray().Select(e => e.GetString()!));
        }
        using var empty = JsonDocument.Parse((r with { Warnings = [] }).ToJson());
        Assert.Equal(JsonValueKind.Array, empty.RootElement.GetProperty("warnings").ValueKind);
        Assert.Equal(0, empty.RootElement.GetProperty("warnings").GetArrayLength());
    }

    private static readonly string[] AdapterKeys =
    [
        "peft_type", "task_type", "base_model_name_or_path", "r", "lora_alpha", "lora_dropout", "target_modules", "layers_to_transform",
        "layers_pattern", "rank_pattern", "alpha_pattern", "modules_to_save", "use_rslora", "use_dora", "bias", "fan_in_fan_out",
        "init_lora_weights", "inference_mode",
    ];

    [Fact]
    public void Adapter_config_keeps_every_peft_key_with_its_json_type_and_explicit_nulls()
    {
        using var dir = new TempDir();
        var cfg = Models.LlamaModelTests.SmallConfig(tied: false) with { NumHiddenLayers = 3 };
        using var model = DecoderModel.CreateRandom(cfg, 3, std: 0.2f);
        using (var a = LoraInjector.Apply(model, new LoraConfig { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "v_proj"] }))
        {
            AdapterFiles.Save(a, dir.File("plain"));
            a.Remove();
        }
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("plain"), AdapterFiles.ConfigFile))))
        {
            var o = doc.RootElement;
            Assert.Equal(AdapterKeys, Keys(o));
            Assert.Equal("LORA", o.GetProperty("peft_type").GetString());
            Assert.Equal("CAUSAL_LM", o.GetProperty("task_type").GetString());
            foreach (string key in new[] { "base_model_name_or_path", "layers_to_transform", "layers_pattern", "modules_to_save" })
                Assert.Equal(JsonValueKind.Null, o.GetProperty(key).ValueKind);
            Assert.Equal(2, o.GetProperty("r").GetInt32());
            Assert.Equal(4, o.GetProperty("lora_alpha").GetDouble());
            Assert.Equal(0, o.GetProperty("lora_dropout").GetDouble());
            Assert.Equal(["q_proj", "v_proj"], o.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()!));
            Assert.Equal(JsonValueKind.Object, o.GetProperty("rank_pattern").ValueKind);
            Assert.Empty(o.GetProperty("rank_pattern").EnumerateObject());
            Assert.Empty(o.GetProperty("alpha_pattern").EnumerateObject());
            Assert.Equal(JsonValueKind.False, o.GetProperty("use_rslora").ValueKind);
            Assert.Equal(JsonValueKind.False, o.GetProperty("use_dora").ValueKind);
            Assert.Equal("none", o.GetProperty("bias").GetString());
            Assert.Equal(JsonValueKind.False, o.GetProperty("fan_in_fan_out").ValueKind);
            Assert.Equal(JsonValueKind.True, o.GetProperty("init_lora_weights").ValueKind);
            Assert.Equal(JsonValueKind.True, o.GetProperty("inference_mode").ValueKind);
        }

        // Some layers only, per-layer ranks/alphas, gaussian init, DoRA, rsLoRA and a base model name.
        var config = new LoraConfig
        {
            Rank = 2, Alpha = 4, Dropout = 0.05, TargetModules = ["q_proj", "down_proj"], LayerRange = (1, 2), Init = LoraInit.Gaussian,
            UseDora = true, UseRsLora = true, RankPattern = new Dictionary<string, int> { ["down_proj"] = 3 },
            AlphaPattern = new Dictionary<string, double> { ["q_proj"] = 2.5 },
        };
        using (var a = LoraInjector.Apply(model, config))
        {
            AdapterFiles.Save(a, dir.File("rich"), "org/base-model");
            a.Remove();
        }
        string text = File.ReadAllText(Path.Combine(dir.File("rich"), AdapterFiles.ConfigFile));
        Assert.Contains("\n  \"peft_type\": \"LORA\",", text.ReplaceLineEndings("\n")); // indented as PEFT writes it
        using (var doc = JsonDocument.Parse(text))
        {
            var o = doc.RootElement;
            Assert.Equal(AdapterKeys, Keys(o));
            Assert.Equal("org/base-model", o.GetProperty("base_model_name_or_path").GetString());
            Assert.Equal(0.05, o.GetProperty("lora_dropout").GetDouble());
            Assert.Equal([1, 2], o.GetProperty("layers_to_transform").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(JsonValueKind.Null, o.GetProperty("layers_pattern").ValueKind);
            Assert.Equal(3, o.GetProperty("rank_pattern").GetProperty("down_proj").GetInt32());
            Assert.Equal(["down_proj"], Keys(o.GetProperty("rank_pattern")));
            Assert.Equal(2.5, o.GetProperty("alpha_pattern").GetProperty("q_proj").GetDouble());
            Assert.Equal(["q_proj"], Keys(o.GetProperty("alpha_pattern")));
            Assert.Equal(JsonValueKind.True, o.GetProperty("use_rslora").ValueKind);
            Assert.Equal(JsonValueKind.True, o.GetProperty("use_dora").ValueKind);
            Assert.Equal("gaussian", o.GetProperty("init_lora_weights").GetString());
        }
        using var back = AdapterFiles.Load(dir.File("rich"), model);
        Assert.Equal(4, back.Modules.Count);
        Assert.All(back.Modules, m => Assert.Equal(m.LayerName.EndsWith("down_proj", StringComparison.Ordinal) ? 3 : 2, m.Rank));
        back.Remove();
    }

    [Fact]
    public void Training_options_json_keeps_its_keys_nulls_and_indentation()
    {
        string json = new TrainingOptions().ToJson().ReplaceLineEndings("\n");
        Assert.StartsWith("{\n  \"steps\": 200,\n  \"epochs\": null,\n  \"micro_batch\": 4,\n  \"grad_accumulation\": 1,", json);
        Assert.Contains("\n  \"learning_rate\": 0.001,\n", json);
        Assert.Contains("\n  \"schedule\": \"cosine\",\n", json);
        Assert.Contains("\n  \"weight_decay\": 0,\n  \"max_grad_norm\": 1,\n", json);
        Assert.Contains("\n  \"output_dir\": null", json);
        string[] expected =
        [
            "steps", "epochs", "micro_batch", "grad_accumulation", "seq_len", "learning_rate", "warmup_steps", "schedule", "min_lr_ratio",
            "weight_decay", "max_grad_norm", "eval_every", "eval_batches", "early_stopping_patience", "checkpoint_every", "keep_checkpoints",
            "activation_checkpointing", "vocab_chunk", "max_consecutive_non_finite", "seed", "output_dir",
        ];
        using (var doc = JsonDocument.Parse(json))
        {
            // the keys above, in this order (fields added later may sit among them)
            var keys = Keys(doc.RootElement);
            Assert.Equal(expected, keys.Where(expected.Contains));
        }

        var set = new TrainingOptions { Epochs = 2.5, OutputDir = "runs/ä", Schedule = LrScheduleKind.Linear, Seed = ulong.MaxValue, ActivationCheckpointing = true };
        using (var doc = JsonDocument.Parse(set.ToJson()))
        {
            var o = doc.RootElement;
            Assert.Equal(2.5, o.GetProperty("epochs").GetDouble());
            Assert.Equal("runs/ä", o.GetProperty("output_dir").GetString());
            Assert.Equal("linear", o.GetProperty("schedule").GetString());
            Assert.Equal(ulong.MaxValue, o.GetProperty("seed").GetUInt64());
            Assert.True(o.GetProperty("activation_checkpointing").GetBoolean());
            Assert.Equal(set.VocabChunk, o.GetProperty("vocab_chunk").GetInt32());
        }
    }

    /// <summary>state.json exactly as the hand-written writer produced it (a checkpoint written before the switch).</summary>
    private const string OldStateJson = """
        {
          "step": 12,
          "total_steps": 200,
          "tokens": 6144,
          "data_position": null,
          "best_eval_loss_bits": "3FF8000000000000",
          "evals_without_improvement": 1,
          "consecutive_non_finite": 0,
          "rngs": {
            "data": {
              "s0": "0000000000000001",
              "s1": "0000000000000002",
              "s2": "0000000000ABCDEF",
              "s3": "FFFFFFFFFFFFFFFF",
              "has_spare": true,
              "spare_bits": "3FE0000000000000"
            },
            "dropout": {
              "s0": "0000000000000005",
              "s1": "0000000000000006",
              "s2": "0000000000000007",
              "s3": "0000000000000008",
              "has_spare": false,
              "spare_bits": "0000000000000000"
            }
          }
        }
        """;

    private static void AssertSameState(TrainingState expected, TrainingState actual)
    {
        Assert.Equal(expected.Step, actual.Step);
        Assert.Equal(expected.TotalSteps, actual.TotalSteps);
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.DataPosition, actual.DataPosition);
        Assert.Equal(expected.BestEvalLoss, actual.BestEvalLoss);
        Assert.Equal(expected.EvalsWithoutImprovement, actual.EvalsWithoutImprovement);
        Assert.Equal(expected.ConsecutiveNonFinite, actual.ConsecutiveNonFinite);
        Assert.Equal(expected.Rngs.OrderBy(kv => kv.Key, StringComparer.Ordinal), actual.Rngs.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    [Fact]
    public void Checkpoint_state_reads_the_old_file_and_writes_it_back_byte_for_byte()
    {
        var state = new TrainingState
        {
            Step = 12, TotalSteps = 200, Tokens = 6144, DataPosition = null, BestEvalLoss = 1.5, EvalsWithoutImprovement = 1, ConsecutiveNonFinite = 0,
            Rngs = new Dictionary<string, RngState>
            {
                ["data"] = new(1, 2, 0xABCDEF, ulong.MaxValue, true, 0.5),
                ["dropout"] = new(5, 6, 7, 8, false, 0),
            },
        };
        var old = TrainingCheckpoint.StateFromJson(OldStateJson, "old");
        AssertSameState(state, old);
        Assert.Equal(OldStateJson.ReplaceLineEndings("\n"), TrainingCheckpoint.StateToJson(state).ReplaceLineEndings("\n"));

        // the other nullable pair: a data position and no best loss yet (null bits)
        var other = state with { DataPosition = """{"epoch":1,"index":3}""", BestEvalLoss = null, ConsecutiveNonFinite = 2 };
        string json = TrainingCheckpoint.StateToJson(other);
        using (var doc = JsonDocument.Parse(json))
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("best_eval_loss_bits").ValueKind);
        AssertSameState(other, TrainingCheckpoint.StateFromJson(json, "new"));
    }

    [Fact]
    public void Checkpoint_manifest_lists_every_file_with_size_and_hash_and_verifies()
    {
        using var dir = new TempDir();
        using var p = new Parameter("w", Tensor.From<float>([1f, 2f, 3f], [3], "w"));
        using var opt = new AdamW([p]);
        var state = new TrainingState { Step = 7, TotalSteps = 9, Tokens = 70 };
        string folder = TrainingCheckpoint.Write(dir.Path, state, [p], opt, new TrainingOptions { Steps = 9 });
        Assert.Null(TrainingCheckpoint.Verify(folder));
        string text = File.ReadAllText(Path.Combine(folder, TrainingCheckpoint.ManifestFile));
        Assert.StartsWith("{\n  \"format\": \"edgetune-training-checkpoint\",\n  \"version\": 1,\n  \"step\": 7,\n  \"files\": {\n    \"optimizer.bin\": {\n      \"bytes\": ",
            text.ReplaceLineEndings("\n"));
        using var doc = JsonDocument.Parse(text);
        var o = doc.RootElement;
        Assert.Equal(["format", "version", "step", "files"], Keys(o));
        Assert.Equal([TrainingCheckpoint.OptimizerFile, TrainingCheckpoint.OptionsFile, TrainingCheckpoint.StateFile, TrainingCheckpoint.WeightsFile],
            Keys(o.GetProperty("files")));
        foreach (var f in o.GetProperty("files").EnumerateObject())
        {
            Assert.Equal(["bytes", "sha256"], Keys(f.Value));
            string path = Path.Combine(folder, f.Name);
            Assert.Equal(new FileInfo(path).Length, f.Value.GetProperty("bytes").GetInt64());
            using var fs = File.OpenRead(path);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(fs)), f.Value.GetProperty("sha256").GetString());
        }
        using (var options = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, TrainingCheckpoint.OptionsFile))))
            Assert.Equal(9, options.RootElement.GetProperty("steps").GetInt32());
        var back = TrainingCheckpoint.Load(folder, [p], opt);
        AssertSameState(state, back);
    }

    private const string ConfigWithExtras = """
        {
          "architectures": ["LlamaForCausalLM"],
          "model_type": "llama",
          "hidden_size": 24, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 53, "rms_norm_eps": 1e-05, "max_position_embeddings": 64,
          "quantization_hint": null,
          "custom_block": {"a": [1, 2.50, "x"], "b": {"c": true}},
          "eos_token_id": [2, 7],
          "dtype": "bfloat16",
          "initializer_range": 0.020
        }
        """;

    [Fact]
    public void Hf_config_writes_its_fields_then_the_raw_ones_unchanged()
    {
        var cfg = HfConfig.Parse(ConfigWithExtras);
        string json = cfg.ToJson();
        Assert.Contains("\n  \"rope_scaling\": null,\n", json.ReplaceLineEndings("\n"));
        using var doc = JsonDocument.Parse(json);
        var o = doc.RootElement;
        Assert.Equal(["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings",
            "tie_word_embeddings", "attention_bias", "mlp_bias", "hidden_act", "eos_token_id", "torch_dtype",
            "quantization_hint", "custom_block", "initializer_range"], Keys(o)); // no bos/pad ids, no sliding window: left out
        Assert.Equal([2, 7], o.GetProperty("eos_token_id").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("bfloat16", o.GetProperty("torch_dtype").GetString());
        Assert.Equal(1e-5, o.GetProperty("rms_norm_eps").GetDouble());
        Assert.Equal(6, o.GetProperty("head_dim").GetInt32());
        Assert.Equal(JsonValueKind.Null, o.GetProperty("quantization_hint").ValueKind);
        using (var block = JsonDocument.Parse("""{"a": [1, 2.50, "x"], "b": {"c": true}}"""))
            Assert.True(JsonElement.DeepEquals(block.RootElement, o.GetProperty("custom_block")));
        Assert.Equal("0.020", o.GetProperty("initializer_range").GetRawText()); // raw numbers keep their spelling
        Assert.Equal("2.50", o.GetProperty("custom_block").GetProperty("a")[1].GetRawText());
        Assert.Equal(json, HfConfig.Parse(json).ToJson());

        // single eos id, bos/pad/sliding window set, rope_scaling built from the record (unset llama3 factors left out)
        var set = cfg with
        {
            EosTokenIds = [2], BosTokenId = 1, PadTokenId = 0, SlidingWindow = 32, UseSlidingWindow = false,
            RopeScaling = new RopeScaling("linear", 2),
        };
        using var doc2 = JsonDocument.Parse(set.ToJson());
        var o2 = doc2.RootElement;
        Assert.Equal(2, o2.GetProperty("eos_token_id").GetInt32());
        Assert.Equal(1, o2.GetProperty("bos_token_id").GetInt32());
        Assert.Equal(0, o2.GetProperty("pad_token_id").GetInt32());
        Assert.Equal(32, o2.GetProperty("sliding_window").GetInt32());
        Assert.Equal(JsonValueKind.False, o2.GetProperty("use_sliding_window").ValueKind);
        Assert.Equal(["rope_type", "factor"], Keys(o2.GetProperty("rope_scaling")));
        Assert.Equal(2, o2.GetProperty("rope_scaling").GetProperty("factor").GetDouble());
        var llama3 = HfConfig.Parse((cfg with { RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192) }).ToJson());
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), llama3.RopeScaling);
    }

    [Fact]
    public void Generation_config_writes_the_known_ids_only()
    {
        var cfg = Models.LlamaModelTests.SmallConfig();
        Assert.Equal("{}", ModelExporter.GenerationConfigJson(cfg));
        Assert.Equal("{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2\n}",
            ModelExporter.GenerationConfigJson(cfg with { BosTokenId = 1, EosTokenIds = [2] }).ReplaceLineEndings("\n"));
        Assert.Equal("{\n  \"eos_token_id\": [\n    2,\n    7\n  ],\n  \"pad_token_id\": 0\n}",
            ModelExporter.GenerationConfigJson(cfg with { EosTokenIds = [2, 7], PadTokenId = 0 }).ReplaceLineEndings("\n"));
    }
}
