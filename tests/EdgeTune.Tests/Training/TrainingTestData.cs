using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Tests.Training;

/// <summary>Shared inputs of the trainer tests.</summary>
internal static class TrainingTestData
{
    /// <summary>A seeded token stream with structure to learn (mostly t → 3t+1 mod V, a random token every 7th).</summary>
    public static int[] TokenStream(int n, int vocab)
    {
        var rng = new Rng(77);
        var s = new int[n];
        for (int i = 0; i < n; i++) s[i] = i % 7 == 0 ? rng.NextInt(vocab) : (s[Math.Max(0, i - 1)] * 3 + 1) % vocab;
        return s;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(Action<TrainingStatus> onReport) : IProgress<TrainingStatus>
{
    public void Report(TrainingStatus value) => onReport(value);
}
