namespace EdgeTune.Training;

/// <summary>What a <see cref="TrainingStatus"/> reports.</summary>
public enum TrainingEvent
{
    /// <summary>An optimizer step finished.</summary>
    Step,
    /// <summary>A step was skipped (non-finite loss or gradient); <see cref="TrainingStatus.Message"/> says why.</summary>
    Skipped,
    /// <summary>An evaluation finished.</summary>
    Eval,
    /// <summary>A checkpoint was written (or a corrupt one passed over on resume).</summary>
    Checkpoint,
    /// <summary>Training resumed from a checkpoint.</summary>
    Resumed,
    /// <summary>Training ended; <see cref="TrainingStatus.Message"/> says why.</summary>
    Stopped,
    /// <summary>A power policy paused training (after a checkpoint); <see cref="TrainingStatus.Message"/> says why.
    /// Training goes on by itself once the policies allow it (reported as <see cref="Resumed"/>).</summary>
    Paused,
    /// <summary>A power policy changed the thread count or the sleep after each step (or ended the throttle).</summary>
    Throttled,
}

/// <summary>
/// A progress report. Memory: <see cref="ManagedBytes"/> (GC heap), <see cref="WorkingSetBytes"/>
/// (process RSS) and <see cref="TensorBytes"/> (native tensor memory alive).
/// </summary>
public sealed record TrainingStatus(
    TrainingEvent Event,
    long Step,
    long TotalSteps,
    double? Loss,
    double LearningRate,
    double? GradNorm,
    double TokensPerSecond,
    TimeSpan Elapsed,
    TimeSpan? Eta,
    long ManagedBytes,
    long WorkingSetBytes,
    long TensorBytes,
    double? EvalLoss = null,
    double? EvalPerplexity = null,
    string? Message = null,
    EdgeTune.Energy.EnergyStepRecord? Energy = null,
    double? DpEpsilon = null);

/// <summary>Why <see cref="Trainer.Run"/> returned.</summary>
public enum TrainingStopReason
{
    Completed,
    Cancelled,
    EarlyStopped,
    NonFinite,
    /// <summary>A power policy (e.g. the energy budget) ended the run cleanly, after a checkpoint.</summary>
    PolicyStopped,
}

/// <summary>The outcome of a run: per-step losses of THIS run (NaN for skipped steps), evaluations,
/// where the last checkpoint is, and measured peaks: <see cref="PeakTensorBytes"/> is the process-wide
/// high-water mark of native tensor memory (<see cref="Tensors.TensorMemory.PeakBytes"/>; compare with
/// <see cref="MemoryEstimate.TensorBytes"/>), <see cref="PeakRssBytes"/> the process's peak RSS (compare with
/// <see cref="MemoryEstimate.Total"/>, given as <see cref="PredictedPeakBytes"/> when the trainer had one).
/// <see cref="Energy"/> is the energy summary of this run's steps when the trainer had an accountant;
/// <see cref="Pauses"/> and <see cref="PausedTime"/> count power-policy pauses.</summary>
public sealed record TrainingResult(
    TrainingStopReason Reason,
    long FirstStep,
    long LastStep,
    long TotalSteps,
    IReadOnlyList<double> Losses,
    IReadOnlyList<(long Step, double Loss)> Evals,
    double? BestEvalLoss,
    string? LastCheckpoint,
    long PeakTensorBytes,
    long PeakRssBytes,
    string? Message,
    long? PredictedPeakBytes = null,
    long? PredictedTensorBytes = null,
    EdgeTune.Energy.EnergyReport? Energy = null,
    int Pauses = 0,
    TimeSpan PausedTime = default,
    double? DpEpsilon = null);
