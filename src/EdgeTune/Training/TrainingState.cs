using EdgeTune.Tensors;

namespace EdgeTune.Training;

/// <summary>
/// The trainer's own resumable state (everything but weights and optimizer tensors): the number of
/// completed steps, the data position, named random states and the early-stopping bookkeeping.
/// </summary>
public sealed record TrainingState
{
    /// <summary>Optimizer steps completed (skipped steps count: the schedule and data moved on).</summary>
    public long Step { get; init; }
    public long TotalSteps { get; init; }
    /// <summary>The training source's <see cref="IBatchSource.SavePosition"/>.</summary>
    public string? DataPosition { get; init; }
    /// <summary>Random generators by name (the trainer's own is "trainer").</summary>
    public IReadOnlyDictionary<string, RngState> Rngs { get; init; } = new Dictionary<string, RngState>();
    public double? BestEvalLoss { get; init; }
    public int EvalsWithoutImprovement { get; init; }
    public int ConsecutiveNonFinite { get; init; }
    /// <summary>Tokens trained on so far.</summary>
    public long Tokens { get; init; }
}
