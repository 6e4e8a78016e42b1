using System.Diagnostics;

namespace EdgeTune.Bench.Common;

/// <summary>Wall-clock measurement: warm up, then repeat within a time budget and keep the best.</summary>
public static class Timing
{
    /// <summary>Best seconds per call of <paramref name="body"/> over at least <paramref name="minReps"/>
    /// repetitions (after <paramref name="warmup"/> untimed ones), stopping after <paramref name="budgetSeconds"/>.</summary>
    public static double BestTime(Action body, int warmup, int minReps, int maxReps, double budgetSeconds)
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

    /// <summary>Best wall and calling-thread CPU seconds of two bodies timed alternately, so that both
    /// see the same machine load (the ratio stays meaningful on a busy machine). CPU time counts only
    /// the calling thread (meaningful for single-threaded runs). <paramref name="second"/> may be null.</summary>
    public static (Best First, Best? Second) BestPair(Action first, Action? second, int warmup, int minReps, int maxReps, double budgetSeconds, int settleMs = 0)
    {
        for (int i = 0; i < warmup; i++) { first(); second?.Invoke(); }
        Best b1 = new(double.MaxValue, double.MaxValue), b2 = b1;
        var total = Stopwatch.StartNew();
        // Rounds of three calls each, with an optional pause between the two bodies' rounds: OpenBLAS
        // worker threads busy-wait for tens of milliseconds after a call, and a round started
        // meanwhile runs on one free core (measured: ours 104 vs 215 GFLOP/s on 2 threads).
        for (int r = 0; r < maxReps; r += 3)
        {
            for (int q = 0; q < 3; q++) b1 = b1.With(Measure(first));
            if (second is not null)
            {
                if (settleMs > 0) Thread.Sleep(settleMs);
                for (int q = 0; q < 3; q++) b2 = b2.With(Measure(second));
                if (settleMs > 0) Thread.Sleep(settleMs);
            }
            if (r + 3 >= minReps && total.Elapsed.TotalSeconds > budgetSeconds) break;
        }
        return (b1, second is null ? null : b2);
    }

    private static Best Measure(Action body)
    {
        double c0 = CpuTime.Thread();
        long t0 = Stopwatch.GetTimestamp();
        body();
        double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        return new Best(wall, CpuTime.Thread() - c0);
    }

    /// <summary>Best (smallest) wall-clock and CPU seconds seen.</summary>
    public readonly record struct Best(double Wall, double Cpu)
    {
        public Best With(Best other) => new(Math.Min(Wall, other.Wall), Math.Min(Cpu, other.Cpu));
    }
}
