using EdgeTune.Tensors;

namespace EdgeTune.Training.Evaluation;

/// <summary>Cuts a token stream into next-token-prediction windows for evaluation.</summary>
public static class TextWindows
{
    /// <summary>
    /// Non-overlapping windows of <paramref name="seqLen"/> positions over <paramref name="ids"/>: window k reads
    /// ids[k·L .. k·L+L) and predicts ids[k·L+1 .. k·L+L+1), so every id after the first is scored exactly once.
    /// The last window may be short; it is padded with <paramref name="padId"/> tokens whose targets are ignored.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="seqLen"/> is below 1.</exception>
    public static IReadOnlyList<EvalWindow> Create(ReadOnlySpan<int> ids, int seqLen, int padId = 0)
    {
        if (seqLen < 1) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "TextWindows.Create: the window length must be at least 1");
        var windows = new List<EvalWindow>();
        for (int start = 0; start + 1 < ids.Length; start += seqLen)
        {
            int n = Math.Min(seqLen, ids.Length - 1 - start); // positions with a next token
            var tokens = new int[seqLen];
            var targets = new int[seqLen];
            ids.Slice(start, n).CopyTo(tokens);
            ids.Slice(start + 1, n).CopyTo(targets);
            tokens.AsSpan(n).Fill(padId);
            targets.AsSpan(n).Fill(CrossEntropy.IgnoreIndex);
            windows.Add(new EvalWindow(tokens, targets));
        }
        return windows;
    }
}
