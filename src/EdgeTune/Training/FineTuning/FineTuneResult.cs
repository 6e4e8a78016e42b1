using EdgeTune.Text.Datasets;

namespace EdgeTune.Training.FineTuning;

/// <summary>What a fine-tuning run did and where it put things.</summary>
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
    string LossPlotPath,
    string? SamplePrompt,
    string? Sample);

/// <summary>A line of progress from <see cref="FineTuneJob"/> outside the training steps themselves.</summary>
public sealed record FineTuneMessage(string Text);
