namespace EdgeTune.Training;

/// <summary>
/// Learning rate by step: linear warmup, then cosine, linear or no decay down to a floor.
/// For step s (0-based, the s-th optimizer step), peak η, warmup W, total S, floor r·η:
/// s &lt; W: η·(s+1)/W; after warmup, progress p = (s − W)/max(1, S − W) clamped to [0, 1]:
/// cosine r·η + (1−r)·η·(1 + cos πp)/2; linear η·(1 − (1−r)·p); constant η.
/// </summary>
public sealed class LrSchedule
{
    public LrSchedule(double peak, int warmupSteps, int totalSteps, LrScheduleKind kind = LrScheduleKind.Cosine, double minRatio = 0.1)
    {
        if (!(peak >= 0)) throw new ArgumentOutOfRangeException(nameof(peak), peak, "LrSchedule: the peak learning rate must be ≥ 0");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "LrSchedule: warmup must be ≥ 0");
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "LrSchedule: total steps must be > 0");
        if (!(minRatio >= 0 && minRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(minRatio), minRatio, "LrSchedule: the floor ratio must be in [0, 1]");
        (Peak, WarmupSteps, TotalSteps, Kind, MinRatio) = (peak, warmupSteps, totalSteps, kind, minRatio);
    }

    /// <summary>The schedule the options describe over <paramref name="totalSteps"/>.</summary>
    public static LrSchedule From(TrainingOptions options, int totalSteps) =>
        new(options.LearningRate, options.WarmupSteps, totalSteps, options.Schedule, options.MinLrRatio);

    public double Peak { get; }
    public int WarmupSteps { get; }
    public int TotalSteps { get; }
    public LrScheduleKind Kind { get; }
    public double MinRatio { get; }

    /// <summary>The learning rate of 0-based step <paramref name="step"/>.</summary>
    public double At(long step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "LrSchedule: step must be ≥ 0");
        if (step < WarmupSteps) return Peak * (step + 1) / WarmupSteps;
        if (Kind == LrScheduleKind.Constant) return Peak;
        double p = Math.Clamp((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps), 0, 1);
        double floor = MinRatio * Peak;
        return Kind == LrScheduleKind.Cosine
            ? floor + (Peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * p))
            : Peak * (1 - (1 - MinRatio) * p);
    }
}
