using System.Numerics;

namespace EdgeTune.Tensors;

/// <summary>
/// Plain scalar cross-entropy with log-softmax, generic over the element type so gradient checks
/// run it in double. It builds the whole logits matrix: the definition the chunked fast path
/// (<see cref="CrossEntropy"/>) is tested against, kept forever. Arguments as in <see cref="CrossEntropy"/>.
/// </summary>
public static class CrossEntropyReference
{
    /// <summary>logits: (N,V) targets: (N) → logSumExp: (N), rowLoss: (N) or empty; returns (Σ loss, rows counted).</summary>
    public static (T Sum, int Count) Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, Span<T> logSumExp,
        int rows, int vocab, Span<T> rowLoss = default) where T : IFloatingPointIeee754<T>
    {
        const string op = "CrossEntropyReference.Forward";
        int count = CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.Logits(op, logits.Length, logSumExp.Length, rowLoss.Length, rows, vocab);
        T sum = T.Zero;
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            T loss = T.Zero;
            logSumExp[r] = T.Zero;
            if (t != CrossEntropy.IgnoreIndex)
            {
                var row = logits.Slice(r * vocab, vocab);
                T max = T.NegativeInfinity, s = T.Zero;
                foreach (T x in row)
                {
                    if (!T.IsFinite(x)) throw CrossEntropyChecks.NonFinite(op, r);
                    max = T.Max(max, x);
                }
                foreach (T x in row) s += T.Exp(x - max);
                logSumExp[r] = max + T.Log(s);
                loss = logSumExp[r] - row[t];
                sum += loss;
            }
            if (!rowLoss.IsEmpty) rowLoss[r] = loss;
        }
        return (sum, count);
    }

    /// <summary>dLogits: (N,V) (+)= (softmax − onehot)·scale; ignored rows are left alone (accumulate) or zeroed.</summary>
    public static void Backward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, ReadOnlySpan<T> logSumExp, Span<T> dLogits,
        int rows, int vocab, T scale, bool accumulate = true) where T : IFloatingPointIeee754<T>
    {
        const string op = "CrossEntropyReference.Backward";
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.Logits(op, logits.Length, logSumExp.Length, 0, rows, vocab);
        ShapeException.RequireLength(op, "dLogits", dLogits.Length, (long)rows * vocab);
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            for (int j = 0; j < vocab; j++)
            {
                T g = t == CrossEntropy.IgnoreIndex ? T.Zero
                    : (T.Exp(logits[r * vocab + j] - logSumExp[r]) - (j == t ? T.One : T.Zero)) * scale;
                dLogits[r * vocab + j] = accumulate ? dLogits[r * vocab + j] + g : g;
            }
        }
    }

    /// <summary>x: (N,C) weight: (V,C) targets: (N) → logSumExp: (N); the logits x·Wᵀ are built whole.</summary>
    public static (T Sum, int Count) LmHeadForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<int> targets, Span<T> logSumExp,
        int rows, int channels, int vocab, Span<T> rowLoss = default) where T : IFloatingPointIeee754<T>
    {
        CrossEntropyChecks.LmHead("CrossEntropyReference.LmHeadForward", x.Length, weight.Length, logSumExp.Length, rowLoss.Length, rows, channels, vocab, 1);
        var logits = new T[rows * vocab];
        GemmReference.ABt(x, weight, logits, rows, channels, vocab);
        return Forward<T>(logits, targets, logSumExp, rows, vocab, rowLoss);
    }

    /// <summary>dx: (N,C) += dlogits·W; dWeight: (V,C) += dlogitsᵀ·x when not empty; dlogits = (softmax − onehot)·scale.</summary>
    public static void LmHeadBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<int> targets, ReadOnlySpan<T> logSumExp,
        Span<T> dx, Span<T> dWeight, int rows, int channels, int vocab, T scale) where T : IFloatingPointIeee754<T>
    {
        const string op = "CrossEntropyReference.LmHeadBackward";
        CrossEntropyChecks.LmHead(op, x.Length, weight.Length, logSumExp.Length, 0, rows, channels, vocab, 1);
        ShapeException.RequireLength(op, "dx", dx.Length, (long)rows * channels);
        var logits = new T[rows * vocab];
        GemmReference.ABt(x, weight, logits, rows, channels, vocab);
        var dLogits = new T[rows * vocab];
        Backward<T>(logits, targets, logSumExp, dLogits, rows, vocab, scale, accumulate: false);
        GemmReference.AB<T>(dLogits, weight, dx, rows, vocab, channels, accumulate: true);
        if (!dWeight.IsEmpty)
        {
            ShapeException.RequireLength(op, "dWeight", dWeight.Length, (long)vocab * channels);
            GemmReference.AtB<T>(dLogits, x, dWeight, vocab, rows, channels, accumulate: true);
        }
    }
}
