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
}
