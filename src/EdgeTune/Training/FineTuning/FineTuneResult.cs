using EdgeTune.Text.Datasets;

namespace EdgeTune.Training.FineTuning;

/// <summary>What a fine-tuning run did and where it put things; <see cref="Energy"/> is the energy of the training
/// steps (also in <see cref="TrainingResult.Energy"/>) and <see cref="EnergyPlotPath"/> the power/energy PNG. The plot
/// paths are null in an encrypted run (no plaintext plots are drawn).</summary>
public sealed record FineTuneResult(
    DataReport Data,
    MemoryPlan Memory,
    long TrainableParameters,
    long TotalParameters,
    (double Loss, double Perplexity)? EvalBefore,
    (double Loss, double Perplexity)? EvalAfter,
    TrainingResult Training,
    string OutputDir,
    string SavedTo,
    string MetricsPath,
    string? LossPlotPath,
    string? SamplePrompt,
    string? Sample,
    EdgeTune.Energy.EnergyReport? Energy = null,
    string? EnergyPlotPath = null,
    string? EnergyMeterExplanation = null,
    DpSummary? Privacy = null,
    string? CanariesPath = null)
{
    /// <summary>Each sample prompt with the greedy answer before training and after (empty when cancelled or without prompts).</summary>
    public IReadOnlyList<SampleComparison> Samples { get; init; } = [];

    /// <summary>With the built-in model and LoRA: a self-contained model folder (base with the adapter merged, plus
    /// the tokenizer) that <c>generate</c>/<c>eval</c> load directly; null otherwise.</summary>
    public string? MergedModelPath { get; init; }
}

/// <summary>A prompt with the model's greedy answer before fine-tuning and after.</summary>
public sealed record SampleComparison(string Prompt, string Before, string After);

/// <summary>The differential-privacy guarantee of a DP-SGD run: (ε, δ) spent over <see cref="Steps"/> steps of the
/// subsampled Gaussian mechanism with noise multiplier σ, clip C and sampling rate q = lot / examples, by the RDP
/// accountant under the Poisson-sampling assumption (the batches actually drawn are shuffled, fixed-size).</summary>
public sealed record DpSummary(double Epsilon, double Delta, double NoiseMultiplier, double ClipNorm, double SamplingRate,
    long Steps, int LotSize, int DatasetSize);

/// <summary>A line of progress from <see cref="FineTuneJob"/> outside the training steps themselves.</summary>
public sealed record FineTuneMessage(string Text);
