namespace EdgeTune.Text.Internal;

/// <summary>
/// Greedy BPE merging over a sequence of symbol ids: repeatedly merge the adjacent pair with the lowest
/// priority value (ties: leftmost), until no pair can merge. Priority is the merge rank for tokenizer.json
/// models and minus the merged piece's score for SentencePiece/llama2.c models. A heap with stale-entry
/// checks keeps it O(n log n), so long unsplit texts (SentencePiece has no pre-tokenizer) stay fast.
/// </summary>
internal static class PairMerger
{
    /// <summary>Looks up a pair: returns false when the pair never merges.</summary>
    public delegate bool TryMerge(int left, int right, out double priority, out int merged);

    public static void Merge(List<int> symbols, TryMerge tryMerge)
    {
        int n = symbols.Count;
        if (n < 2) return;
        var ids = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }

        // Entry: (priority, left position); payload remembers the ids it was computed for, to detect staleness.
        var heap = new PriorityQueue<(int Left, int LeftId, int RightId, int Merged), (double, int)>();
        void Push(int left)
        {
            int right = next[left];
            if (right < 0) return;
            if (tryMerge(ids[left], ids[right], out double p, out int m)) heap.Enqueue((left, ids[left], ids[right], m), (p, left));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);

        while (heap.TryDequeue(out var e, out _))
        {
            int left = e.Left;
            if (!alive[left] || ids[left] != e.LeftId) continue;
            int right = next[left];
            if (right < 0 || ids[right] != e.RightId) continue;
            ids[left] = e.Merged;
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            if (prev[left] >= 0) Push(prev[left]);
            Push(left);
        }

        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i]) symbols.Add(ids[i]);
    }
}
