using System.Diagnostics;

namespace EdgeTune.Bench.Common;

/// <summary>Wall-clock measurement: warm up, then repeat within a time budget and keep the best.</summary>
public static class Timing
{
    /// <summary>Best seconds per call of <paramref name="body"/> over at least <paramref name="minReps"/>
    /// repetitions (after <paramref name="warmup"/> untimed ones), stopping after <paramref name="budgetSeconds"/>.</summary>
    public static double Best(Action body, int warmup, int minReps, int maxReps, double budgetSeconds)
    {
        for (int i = 0; i < warmup; i++) body();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int r = 0; r < maxReps; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            double s = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Min(best, s);
            if (r + 1 >= minReps && total.Elapsed.TotalSeconds > budgetSeconds) break;
        }
        return best;
    }

    /// <summary>Best seconds of two bodies timed alternately, so that both see the same machine load
    /// (the ratio stays meaningful on a busy machine). <paramref name="second"/> may be null.</summary>
    public static (double First, double? Second) BestPair(Action first, Action? second, int warmup, int minReps, int maxReps, double budgetSeconds)
    {
        for (int i = 0; i < warmup; i++) { first(); second?.Invoke(); }
        double b1 = double.MaxValue, b2 = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int r = 0; r < maxReps; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            first();
            b1 = Math.Min(b1, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            if (second is not null)
            {
                t0 = Stopwatch.GetTimestamp();
                second();
                b2 = Math.Min(b2, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            if (r + 1 >= minReps && total.Elapsed.TotalSeconds > budgetSeconds) break;
        }
        return (b1, second is null ? null : b2);
    }

    /// <summary>Like <see cref="BestPair"/> but timing by the calling thread's CPU time (single-thread
    /// runs on a shared machine: time spent descheduled does not count).</summary>
    public static (double First, double? Second) BestPairCpu(Action first, Action? second, int warmup, int minReps, int maxReps, double budgetSeconds)
    {
        for (int i = 0; i < warmup; i++) { first(); second?.Invoke(); }
        double b1 = double.MaxValue, b2 = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int r = 0; r < maxReps; r++)
        {
            double t0 = CpuTime.Thread();
            first();
            b1 = Math.Min(b1, CpuTime.Thread() - t0);
            if (second is not null)
            {
                t0 = CpuTime.Thread();
                second();
                b2 = Math.Min(b2, CpuTime.Thread() - t0);
            }
            if (r + 1 >= minReps && total.Elapsed.TotalSeconds > budgetSeconds) break;
        }
        return (b1, second is null ? null : b2);
    }
}
