using System.Globalization;
using System.Text.Json.Serialization;
using EdgeTune.Internal;

namespace EdgeTune.Training;

/// <summary>How the learning rate decays after warmup.</summary>
public enum LrScheduleKind
{
    /// <summary>Half a cosine from the peak down to <see cref="TrainingOptions.MinLrRatio"/> × peak.</summary>
    Cosine,
    /// <summary>A straight line from the peak down to <see cref="TrainingOptions.MinLrRatio"/> × peak.</summary>
    Linear,
    /// <summary>The peak, unchanged after warmup.</summary>
    Constant,
}

/// <summary>
/// Everything a <see cref="Trainer"/> run needs to know, with defaults that work for a small LoRA run.
/// One optimizer step consumes <see cref="GradAccumulation"/> micro-batches of
/// <see cref="MicroBatch"/> × <see cref="SeqLen"/> tokens.
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps to run (ignored when <see cref="Epochs"/> is set and the data knows its size).</summary>
    public int Steps { get; init; } = 200;
    /// <summary>Passes over the training data; when set, steps = ⌈epochs × batches per epoch / accumulation⌉.</summary>
    public double? Epochs { get; init; }
    /// <summary>Sequences per micro-batch (B).</summary>
    public int MicroBatch { get; init; } = 4;
    /// <summary>Micro-batches whose gradients are summed (each loss scaled by 1/accumulation) before a step.</summary>
    public int GradAccumulation { get; init; } = 1;
    /// <summary>Tokens per sequence (T).</summary>
    public int SeqLen { get; init; } = 128;
    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Steps of linear warmup from lr/warmup to the peak.</summary>
    public int WarmupSteps { get; init; } = 10;
    public LrScheduleKind Schedule { get; init; } = LrScheduleKind.Cosine;
    /// <summary>Final learning rate as a fraction of the peak (cosine and linear).</summary>
    public double MinLrRatio { get; init; } = 0.1;
    /// <summary>AdamW's decoupled weight decay.</summary>
    public double WeightDecay { get; init; } = 0.0;
    /// <summary>Global gradient-norm clip; 0 turns clipping off (the norm is still reported).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Evaluate every this many steps (0: only at the end, when validation data is given).</summary>
    public int EvalEvery { get; init; } = 50;
    /// <summary>Validation micro-batches per evaluation.</summary>
    public int EvalBatches { get; init; } = 8;
    /// <summary>Stop after this many evaluations without a new best loss (0: never).</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Write a checkpoint every this many steps (0: only on cancellation and at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;
    /// <summary>Checkpoints kept (older ones are deleted).</summary>
    public int KeepCheckpoints { get; init; } = 2;
    /// <summary>Recompute each transformer block's activations in backward instead of keeping them.</summary>
    public bool ActivationCheckpointing { get; init; }
    /// <summary>Vocabulary rows per chunk of the fused LM-head cross-entropy.</summary>
    public int VocabChunk { get; init; } = Tensors.CrossEntropy.DefaultChunk;
    /// <summary>Skip a step whose loss or gradient is NaN/∞; stop after this many in a row.</summary>
    public int MaxConsecutiveNonFinite { get; init; } = 5;
    public ulong Seed { get; init; } = 1234;
    /// <summary>Where checkpoints and metrics go (null: none are written).</summary>
    public string? OutputDir { get; init; }

    /// <summary>Tokens consumed per optimizer step.</summary>
    public long TokensPerStep => (long)MicroBatch * SeqLen * GradAccumulation;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field out of range and its value.</summary>
    public TrainingOptions Validate()
    {
        static void Require(bool ok, string field, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"training options: {field} = {Convert.ToString(value, CultureInfo.InvariantCulture)} is invalid; {rule}", field);
        }
        Require(Steps > 0 || Epochs is not null, nameof(Steps), Steps, "must be > 0 (or set Epochs)");
        if (Epochs is double e) Require(e > 0 && double.IsFinite(e), nameof(Epochs), e, "must be > 0");
        Require(MicroBatch > 0, nameof(MicroBatch), MicroBatch, "must be > 0");
        Require(GradAccumulation > 0, nameof(GradAccumulation), GradAccumulation, "must be > 0");
        Require(SeqLen > 0, nameof(SeqLen), SeqLen, "must be > 0");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be > 0");
        Require(WarmupSteps >= 0, nameof(WarmupSteps), WarmupSteps, "must be ≥ 0");
        Require(MinLrRatio >= 0 && MinLrRatio <= 1, nameof(MinLrRatio), MinLrRatio, "must be in [0, 1]");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be ≥ 0");
        Require(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), nameof(MaxGradNorm), MaxGradNorm, "must be ≥ 0 (0 = no clipping)");
        Require(EvalEvery >= 0, nameof(EvalEvery), EvalEvery, "must be ≥ 0");
        Require(EvalBatches > 0, nameof(EvalBatches), EvalBatches, "must be > 0");
        Require(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be ≥ 0");
        Require(CheckpointEvery >= 0, nameof(CheckpointEvery), CheckpointEvery, "must be ≥ 0");
        Require(KeepCheckpoints > 0, nameof(KeepCheckpoints), KeepCheckpoints, "must be > 0");
        Require(VocabChunk > 0, nameof(VocabChunk), VocabChunk, "must be > 0");
        Require(MaxConsecutiveNonFinite > 0, nameof(MaxConsecutiveNonFinite), MaxConsecutiveNonFinite, "must be > 0");
        return this;
    }

    /// <summary>The fully resolved options as one JSON object (for logs and checkpoints).</summary>
    public string ToJson() => EdgeTuneJson.Write(TrainingOptionsJson.From(this), EdgeTuneJson.Default.TrainingOptionsJson, indented: true);
}

/// <summary>The JSON of <see cref="TrainingOptions"/> (options.json of a checkpoint, the first metrics row): every
/// option, epochs and output_dir as null when unset, the schedule in lower case.</summary>
internal sealed record TrainingOptionsJson(
    int Steps,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] double? Epochs,
    int MicroBatch,
    int GradAccumulation,
    int SeqLen,
    double LearningRate,
    int WarmupSteps,
    string Schedule,
    double MinLrRatio,
    double WeightDecay,
    double MaxGradNorm,
    int EvalEvery,
    int EvalBatches,
    int EarlyStoppingPatience,
    int CheckpointEvery,
    int KeepCheckpoints,
    bool ActivationCheckpointing,
    int VocabChunk,
    int MaxConsecutiveNonFinite,
    ulong Seed,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? OutputDir)
{
    public static TrainingOptionsJson From(TrainingOptions o) => new(
        o.Steps,
        o.Epochs,
        o.MicroBatch,
        o.GradAccumulation,
        o.SeqLen,
        o.LearningRate,
        o.WarmupSteps,
        o.Schedule.ToString().ToLowerInvariant(),
        o.MinLrRatio,
        o.WeightDecay,
        o.MaxGradNorm,
        o.EvalEvery,
        o.EvalBatches,
        o.EarlyStoppingPatience,
        o.CheckpointEvery,
        o.KeepCheckpoints,
        o.ActivationCheckpointing,
        o.VocabChunk,
        o.MaxConsecutiveNonFinite,
        o.Seed,
        o.OutputDir);
}
