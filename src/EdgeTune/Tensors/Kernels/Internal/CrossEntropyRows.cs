namespace EdgeTune.Tensors.Internal;

/// <summary>
/// Per-row pieces of the cross-entropy kernels, written once over <c>TV : IVec&lt;TV&gt;</c>, and the
/// row-parallel driver. A row's result never depends on which thread computed it.
/// </summary>
internal static unsafe class CrossEntropyRows
{
    /// <summary>Rows per worker task.</summary>
    public const int RowsPerTask = 16;

    /// <summary>
    /// Folds logits x[0..n) into a running (max, Σ exp(x − max)) pair; false when x holds NaN/Inf.
    /// </summary>
    public static bool Fold<TV>(float* x, int n, ref float runMax, ref float runSum) where TV : struct, IVec<TV>
    {
        float m = BlockMath.MaxChecked<TV>(x, n, out bool bad);
        if (bad) return false;
        float mNew = MathF.Max(runMax, m);
        runSum = runSum * MathF.Exp(runMax - mNew) + BlockMath.SumExpShift<TV>(x, n, mNew);
        runMax = mNew;
        return true;
    }

    /// <summary>g[0..n) (+)= exp(x − lse)·scale, minus scale at <paramref name="target"/> when it falls in [0, n).</summary>
    public static void Gradient<TV>(float* x, float* g, int n, float lse, float scale, int target, bool accumulate)
        where TV : struct, IVec<TV>
    {
        BlockMath.ExpShiftScale<TV>(x, g, n, lse, scale, accumulate);
        if ((uint)target < (uint)n) g[target] -= scale;
    }

    /// <summary>Runs body(r) for every row on the shared pool; returns the lowest row for which body returned false, or -1.</summary>
    public static int ForRows(int rows, Func<int, bool> body)
    {
        int firstBad = int.MaxValue;
        int tasks = (rows + RowsPerTask - 1) / RowsPerTask;
        WorkerPool.Shared.Run(tasks, task =>
        {
            int end = Math.Min(rows, (task + 1) * RowsPerTask);
            for (int r = task * RowsPerTask; r < end; r++)
                if (!body(r))
                {
                    int seen;
                    while (r < (seen = Volatile.Read(ref firstBad)) && Interlocked.CompareExchange(ref firstBad, r, seen) != seen) { }
                    return;
                }
        });
        return firstBad == int.MaxValue ? -1 : firstBad;
    }
}
