namespace EdgeTune.Tensors;

/// <summary>Argument checks shared by the cross-entropy kernels.</summary>
internal static class CrossEntropyChecks
{
    /// <summary>Checks every target is <see cref="CrossEntropy.IgnoreIndex"/> or in [0, vocab); returns how many are not ignored.</summary>
    public static int Targets(string op, ReadOnlySpan<int> targets, int rows, int vocab)
    {
        ShapeException.RequireNonNegative(op, "N", rows);
        if (vocab <= 0) throw new ShapeException($"{op}: vocabulary size V = {vocab} must be positive");
        ShapeException.RequireLength(op, "targets", targets.Length, rows);
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t == CrossEntropy.IgnoreIndex) continue;
            if ((uint)t >= (uint)vocab)
                throw new ShapeException($"{op}: target id {t} at row {r} is outside the vocabulary [0, {vocab}) (use {CrossEntropy.IgnoreIndex} to ignore a row)");
            count++;
        }
        return count;
    }

    public static void Logits(string op, int logitsLen, int lseLen, int rowLossLen, int rows, int vocab)
    {
        ShapeException.RequireLength(op, "logits", logitsLen, (long)rows * vocab);
        ShapeException.RequireLength(op, "logSumExp", lseLen, rows);
        if (rowLossLen != 0) ShapeException.RequireLength(op, "rowLoss", rowLossLen, rows);
    }

    public static void LmHead(string op, int xLen, int wLen, int lseLen, int rowLossLen, int rows, int channels, int vocab, int chunk)
    {
        ShapeException.RequireNonNegative(op, "C", channels);
        if (chunk <= 0) throw new ShapeException($"{op}: chunk = {chunk} vocabulary rows must be positive");
        ShapeException.RequireLength(op, "x", xLen, (long)rows * channels);
        ShapeException.RequireLength(op, "weight", wLen, (long)vocab * channels);
        ShapeException.RequireLength(op, "logSumExp", lseLen, rows);
        if (rowLossLen != 0) ShapeException.RequireLength(op, "rowLoss", rowLossLen, rows);
    }

    public static ArithmeticException NonFinite(string op, int row) =>
        new($"{op}: the logits of row {row} hold NaN or Inf");
}
