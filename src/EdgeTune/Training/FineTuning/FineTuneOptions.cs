using EdgeTune.Adapters;
using EdgeTune.Energy;

namespace EdgeTune.Training.FineTuning;

/// <summary>Everything a fine-tuning run needs; defaults work. The CLI binds its flags to this record.</summary>
public sealed record FineTuneOptions
{
    /// <summary>A model folder/file or Hub id; null fine-tunes the built-in pre-trained stories260K (<see cref="Models.BuiltInModels"/>).</summary>
    public string? Model { get; init; }

    /// <summary>Tokenizer file or folder; default: the model's own.</summary>
    public string? Tokenizer { get; init; }

    /// <summary>Training data: a .txt file, or rows (text, Alpaca instruction/input/output, messages, ShareGPT
    /// conversations, prompt/completion) in JSONL, a JSON array, CSV/TSV or Parquet; or a Hub dataset,
    /// <c>hf://datasets/org/name[@revision][/config][/split]</c>; null: the built-in demo stories
    /// (<see cref="Models.BuiltInModels.DemoDataPath"/>), which teach stories260K about Zog the little green dragon.</summary>
    public string? Data { get; init; }

    /// <summary>Hub settings for a Hub model or <c>hf://datasets/...</c> data (endpoint, cache, token, offline);
    /// null: <see cref="Formats.Hub.HubOptions.FromEnvironment()"/>.</summary>
    public Formats.Hub.HubOptions? Hub { get; init; }

    /// <summary>LoRA or full fine-tuning; null: LoRA for a named model, full for the built-in one.</summary>
    /// <remarks>Full is the built-in default because stories260K was trained with BOS between stories and never saw
    /// EOS: LoRA leaves the embeddings frozen, so a LoRA-tuned stories260K does not learn to end a text and runs on
    /// into noise after what it learned; full fine-tuning trains the EOS row too.</remarks>
    public FineTuneMethod? Method { get; init; }

    public LoraConfig Lora { get; init; } = new() { Rank = 16, Alpha = 32, TargetModules = LoraConfig.AllProjections };

    public TrainingOptions Training { get; init; } = new();

    /// <summary>Held-out share of the data for evaluation.</summary>
    public double ValidationFraction { get; init; } = 0.1;

    /// <summary>Run folder: checkpoints, metrics.jsonl, loss.png, the adapter or model.</summary>
    public string OutputDir { get; init; } = Path.Combine("runs", "finetune");

    /// <summary>Encrypt every file of the run folder (checkpoints, adapter, merged model, data report, canaries, metrics)
    /// with this key, or read it with it when it is already encrypted (<see cref="Security.RunFiles"/>); loss/energy
    /// plots are then not drawn (they would be plaintext). Null: plain, and an encrypted folder is refused (resuming
    /// one needs its key). The caller owns and disposes the key.</summary>
    public Security.EncryptionKey? Encryption { get; init; }

    /// <summary>Continue from the newest valid checkpoint in <see cref="OutputDir"/>.</summary>
    public bool Resume { get; init; }

    /// <summary>Memory budget: settings are chosen to fit it, or the run is refused with the reason.</summary>
    public long? MaxMemoryBytes { get; init; }

    /// <summary>A prompt answered greedily before and after training (a user message when the model has a chat template);
    /// null: the built-in demo's prompts for the demo data, else the data's first instruction/user message (JSONL).</summary>
    public string? SamplePrompt { get; init; }

    public int SampleTokens { get; init; } = 80;

    /// <summary>Power policies evaluated between steps (<c>--only-on-ac</c>, <c>--min-battery</c>, <c>--max-temp</c>,
    /// <c>--power-cap</c>, <c>--energy-budget</c>); none by default.</summary>
    public PowerPolicyOptions Power { get; init; } = PowerPolicyOptions.None;

    /// <summary>How energy is reported (grid intensity for CO2e).</summary>
    public EnergyAccountingOptions EnergyAccounting { get; init; } = EnergyAccountingOptions.Default;

    /// <summary>Power model of the estimator used when no energy sensor exists; <see cref="DeviceProfile.Default"/> when null.</summary>
    public DeviceProfile? DeviceProfile { get; init; }

    /// <summary>The meters to use instead of probing the machine (<see cref="EnergyMeterDiscovery.Discover"/>, which
    /// honours <c>EDGETUNE_SYSFS_ROOT</c>); for tests and embedding.</summary>
    public EnergyMeterSet? Meters { get; init; }

    /// <summary>Passed to <see cref="Trainer.AfterBackward"/> (e.g. a pruning mask zeroing pruned gradients); null: none.</summary>
    public Action<IReadOnlyList<EdgeTune.Autograd.Parameter>>? AfterBackward { get; init; }

    /// <summary>Passed to <see cref="Trainer.AfterStep"/> (e.g. a pruning mask re-zeroing pruned weights); null: none.</summary>
    public Action<IReadOnlyList<EdgeTune.Autograd.Parameter>>? AfterStep { get; init; }

    /// <summary>Quantization-aware training: the projections' weights are fake-quantized in this format on every
    /// forward (straight-through gradients, <see cref="Compression.Quantization.Qat.QatInjector"/>), and the F32
    /// weights trained so are saved; null (default) trains plainly. With LoRA the adapter learns against the
    /// fake-quantized frozen base.</summary>
    public EdgeTune.Tensors.Quantized.QuantFormat? Qat { get; init; }

    /// <summary>With <see cref="Qat"/>: also fake-quantize each projection's input per token to int8.</summary>
    public bool QatActivations { get; init; }

    /// <summary>QLoRA: quantize the frozen base's decoder projections to this format after loading, before LoRA is
    /// injected (the float weights are released). Only with <see cref="FineTuneMethod.Lora"/>. Null: keep the base as loaded.</summary>
    public EdgeTune.Tensors.Quantized.QuantFormat? BaseQuantization { get; init; }

    /// <summary>Differentially private fine-tuning (DP-SGD, <see cref="Privacy.DpSgd"/>): per-example clipping and
    /// Gaussian noise, σ given or calibrated to a target ε; LoRA only. Null (default): plain training.</summary>
    public Privacy.DpSgdOptions? DifferentialPrivacy { get; init; }

    /// <summary>Canaries for a memorization audit (<see cref="Privacy.CanarySet"/>): this many random secrets
    /// ("my code is d d d d d d"), drawn with the training seed, each inserted <see cref="CanaryRepeats"/> times into
    /// the training sequences and written to canaries.json in the run folder. 0 (default): none.</summary>
    public int Canaries { get; init; }

    /// <summary>Copies of each canary in the training data.</summary>
    public int CanaryRepeats { get; init; } = 5;

    public FineTuneMethod ResolvedMethod => Method ?? (Model is null ? FineTuneMethod.Full : FineTuneMethod.Lora);
}
