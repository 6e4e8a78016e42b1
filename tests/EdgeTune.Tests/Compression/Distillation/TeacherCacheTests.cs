using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Distillation;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression.Distillation;

/// <summary>The top-k teacher cache: round trip equal to the live teacher, lookup by content, and clear errors for
/// bad files (wrong magic, version, truncation, corruption) and unknown sequences.</summary>
public sealed class TeacherCacheTests : IDisposable
{
    private const int T = 8, K = 5;
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetune-tcache-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Path, List<int[]> Seqs) Build()
    {
        using var model = DistillationFixtures.Teacher();
        using var teacher = new ModelTeacher(model, K);
        var seqs = DistillationFixtures.Sequences(5, T);
        string path = Path.Combine(_dir, "teacher.ettc");
        int n = TeacherCache.Build(teacher, seqs.Append(seqs[1]), T, K, path, batch: 2);
        Assert.Equal(5, n); // the repeated sequence is stored once
        return (path, seqs);
    }

    [Fact]
    public void RoundTripMatchesTheLiveTeacherInShuffledBatches()
    {
        var (path, seqs) = Build();
        var cache = TeacherCache.Open(path);
        Assert.Equal((32, K, T, 5), (cache.VocabSize, cache.K, cache.SeqLen, cache.Count));
        // a batch in another order, plus a padding row (all targets ignored) that needs no entry
        int[] order = [3, 0, 4];
        var tokens = order.SelectMany(i => seqs[i]).Concat(new int[T]).ToArray();
        var targets = Enumerable.Repeat(1, 3 * T).Concat(Enumerable.Repeat(CrossEntropy.IgnoreIndex, T)).ToArray();
        var cached = cache.Predict(tokens, targets, 4, T);
        using var model = DistillationFixtures.Teacher();
        using var live = new ModelTeacher(model, K);
        var expected = live.Predict(tokens, targets, 4, T);
        Assert.True(cached.IsTopK);
        Assert.Equal(expected.Ids!.AsSpan(0, 3 * T * K).ToArray(), cached.Ids!.AsSpan(0, 3 * T * K).ToArray());
        Assert.Equal(expected.Values.AsSpan(0, 3 * T * K).ToArray(), cached.Values.AsSpan(0, 3 * T * K).ToArray());
        // log-probabilities are descending and at most 0 within each position
        for (int p = 0; p < 3 * T; p++)
            for (int j = 1; j < K; j++) Assert.True(cached.Values[p * K + j] <= cached.Values[p * K + j - 1] && cached.Values[p * K] <= 0);
    }

    [Fact]
    public void UnknownSequenceAndWrongLengthAreClearErrors()
    {
        var (path, _) = Build();
        var cache = TeacherCache.Open(path);
        var other = DistillationFixtures.Sequences(1, T, seed: 99)[0];
        var e = Assert.Throws<KeyNotFoundException>(() => cache.Predict(other, Enumerable.Repeat(1, T).ToArray(), 1, T));
        Assert.Contains("no entry", e.Message);
        var a = Assert.Throws<ArgumentException>(() => cache.Predict(new int[2 * T], new int[2 * T], 1, 2 * T));
        Assert.Contains("--seq-len", a.Message);
    }

    [Fact]
    public void BadFilesAreRefusedNamingTheProblem()
    {
        var (path, _) = Build();
        byte[] good = File.ReadAllBytes(path);
        string bad = Path.Combine(_dir, "bad.ettc");

        var flipped = (byte[])good.Clone();
        flipped[good.Length / 2] ^= 0x40;
        File.WriteAllBytes(bad, flipped);
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => TeacherCache.Open(bad)).Message);

        File.WriteAllBytes(bad, good[..^20]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => TeacherCache.Open(bad)).Message);

        var version = (byte[])good.Clone();
        version[4] = 9;
        File.WriteAllBytes(bad, version);
        Assert.Contains("version 9", Assert.Throws<InvalidDataException>(() => TeacherCache.Open(bad)).Message);

        File.WriteAllText(bad, "not a cache at all, just some text");
        Assert.Contains("not an EdgeTune teacher cache", Assert.Throws<InvalidDataException>(() => TeacherCache.Open(bad)).Message);

        Assert.Throws<FileNotFoundException>(() => TeacherCache.Open(Path.Combine(_dir, "absent.ettc")));
        Assert.False(File.Exists(path + ".tmp"));
    }
}
