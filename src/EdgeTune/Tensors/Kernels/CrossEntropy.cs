using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>The outcome of a cross-entropy forward: the summed loss over counted rows and their number.</summary>
public readonly record struct CrossEntropyResult(double LossSum, int Count)
{
    /// <summary>The mean loss over counted rows (0 when every row was ignored).</summary>
    public double Mean => Count == 0 ? 0 : LossSum / Count;
}

/// <summary>
/// Cross-entropy fused with log-softmax. Two entry points: on given logits rows, and fused with
/// the LM head (<see cref="LmHeadForward{TW}"/>), which walks the vocabulary in chunks so the
/// (N,V) logits matrix never exists. Both save only each row's log-sum-exp for backward.
/// </summary>
/// <remarks>
/// A target of <see cref="IgnoreIndex"/> skips its row: it adds nothing to the loss, the count or
/// the gradients (its logSumExp and rowLoss are 0). A target outside [0, V) raises a
/// <see cref="ShapeException"/> naming the row, the id and V; NaN or Inf logits raise an
/// <see cref="ArithmeticException"/> naming the op and the row. Backward takes <c>scale</c>, the
/// upstream gradient of the summed loss (for the mean: dLoss / Count). Rows are spread over
/// <see cref="WorkerPool.Shared"/> (not to be called from inside a pool task); the loss sum is
/// added in row order, so results are bit-identical for any thread count.
/// </remarks>
public static unsafe partial class CrossEntropy
{
    /// <summary>The target value that skips a row (as in PyTorch).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>Vocabulary rows per chunk of the fused LM head.</summary>
    public const int DefaultChunk = 4096;

    /// <summary>
    /// logits: (N,V) targets: (N) → logSumExp: (N) (overwritten), rowLoss: (N) (overwritten; empty to skip).
    /// Returns the summed loss (added in row order, in double) and the number of counted rows.
    /// </summary>
    public static CrossEntropyResult Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> logSumExp,
        int rows, int vocab, Span<float> rowLoss = default)
    {
        const string op = "CrossEntropy.Forward";
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.Logits(op, logits.Length, logSumExp.Length, rowLoss.Length, rows, vocab);
        var losses = rowLoss.IsEmpty ? new float[rows] : rowLoss;
        switch (Simd.Width)
        {
            case SimdWidth.V512: ForwardCore<V512>(logits, targets, logSumExp, losses, rows, vocab); break;
            case SimdWidth.V256: ForwardCore<V256>(logits, targets, logSumExp, losses, rows, vocab); break;
            case SimdWidth.V128: ForwardCore<V128>(logits, targets, logSumExp, losses, rows, vocab); break;
            default: CrossEntropyReference.Forward(logits, targets, logSumExp, rows, vocab, losses); break;
        }
        return Total(losses, targets, rows);
    }

    /// <summary>
    /// dLogits: (N,V) (+)= (softmax(logits) − onehot(target))·scale, with logSumExp as saved by
    /// <see cref="Forward"/>. With <paramref name="accumulate"/> (the default, as every backward)
    /// the gradient is added and ignored rows are left untouched; otherwise rows are overwritten
    /// and ignored rows zeroed.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp, Span<float> dLogits,
        int rows, int vocab, float scale, bool accumulate = true)
    {
        const string op = "CrossEntropy.Backward";
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.Logits(op, logits.Length, logSumExp.Length, 0, rows, vocab);
        ShapeException.RequireLength(op, "dLogits", dLogits.Length, (long)rows * vocab);
        switch (Simd.Width)
        {
            case SimdWidth.V512: BackwardCore<V512>(logits, targets, logSumExp, dLogits, rows, vocab, scale, accumulate); break;
            case SimdWidth.V256: BackwardCore<V256>(logits, targets, logSumExp, dLogits, rows, vocab, scale, accumulate); break;
            case SimdWidth.V128: BackwardCore<V128>(logits, targets, logSumExp, dLogits, rows, vocab, scale, accumulate); break;
            default: CrossEntropyReference.Backward(logits, targets, logSumExp, dLogits, rows, vocab, scale, accumulate); break;
        }
    }

    /// <summary>Width-generic forward on logits (arguments checked by the caller); fills logSumExp and rowLoss.</summary>
    internal static void ForwardCore<TV>(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> logSumExp, Span<float> rowLoss,
        int rows, int vocab) where TV : struct, IVec<TV>
    {
        fixed (float* pl = logits, plse = logSumExp, ploss = rowLoss)
        fixed (int* pt = targets)
        {
            float* l0 = pl, lse0 = plse, loss0 = ploss;
            int* t0 = pt;
            int bad = CrossEntropyRows.ForRows(rows, r =>
            {
                int t = t0[r];
                lse0[r] = 0f;
                loss0[r] = 0f;
                if (t == IgnoreIndex) return true;
                float* row = l0 + (long)r * vocab;
                float max = float.NegativeInfinity, sum = 0f;
                if (!CrossEntropyRows.Fold<TV>(row, vocab, ref max, ref sum)) return false;
                lse0[r] = max + MathF.Log(sum);
                loss0[r] = lse0[r] - row[t];
                return true;
            });
            if (bad >= 0) throw CrossEntropyChecks.NonFinite("CrossEntropy.Forward", bad);
        }
    }

    /// <summary>Width-generic backward on logits (arguments checked by the caller).</summary>
    internal static void BackwardCore<TV>(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp, Span<float> dLogits,
        int rows, int vocab, float scale, bool accumulate) where TV : struct, IVec<TV>
    {
        fixed (float* pl = logits, plse = logSumExp, pg = dLogits)
        fixed (int* pt = targets)
        {
            float* l0 = pl, lse0 = plse, g0 = pg;
            int* t0 = pt;
            CrossEntropyRows.ForRows(rows, r =>
            {
                int t = t0[r];
                float* g = g0 + (long)r * vocab;
                if (t == IgnoreIndex)
                {
                    if (!accumulate) new Span<float>(g, vocab).Clear();
                    return true;
                }
                CrossEntropyRows.Gradient<TV>(l0 + (long)r * vocab, g, vocab, lse0[r], scale, t, accumulate);
                return true;
            });
        }
    }

    /// <summary>Σ of the counted rows' losses in row order, in double (deterministic for any thread count).</summary>
    internal static CrossEntropyResult Total(ReadOnlySpan<float> rowLoss, ReadOnlySpan<int> targets, int rows)
    {
        double sum = 0;
        int count = 0;
        for (int r = 0; r < rows; r++)
            if (targets[r] != IgnoreIndex) { sum += rowLoss[r]; count++; }
        return new CrossEntropyResult(sum, count);
    }
}
