using EdgeTune.Tensors;
using static EdgeTune.Tests.Tensors.Kernels.KernelTest;

namespace EdgeTune.Tests.Tensors.Kernels;

public class EmbeddingTests
{
    [Theory]
    [InlineData(10, 7, 5)]
    [InlineData(3, 1, 9)]
    [InlineData(50, 33, 1)]
    [InlineData(4, 64, 12)]
    [InlineData(5, 3, 0)]
    public void ForwardAndBackwardMatchReference(int vocab, int channels, int tokens)
    {
        var rng = new Rng((ulong)(vocab * 1000 + channels * 10 + tokens));
        float[] table = Rand(rng, vocab * channels), dOut = Rand(rng, tokens * channels), dTable = Rand(rng, vocab * channels);
        int[] ids = Enumerable.Range(0, tokens).Select(_ => rng.NextInt(Math.Min(vocab, 3))).ToArray(); // repeats on purpose
        var output = new float[tokens * channels];
        var expected = new double[tokens * channels];
        Embedding.Forward(table, ids, output, vocab, channels);
        EmbeddingReference.Forward<double>(ToDouble(table), ids, expected, vocab, channels);
        Close(expected, output, 0, 0, "Forward");

        double[] eTable = ToDouble(dTable);
        Embedding.Backward(ids, dOut, dTable, vocab, channels);
        EmbeddingReference.Backward<double>(ids, ToDouble(dOut), eTable, vocab, channels);
        Close(eTable, dTable, 1e-6, 1e-6, "Backward");
    }

    [Fact]
    public void HalfAndBFloat16TablesAreWidened()
    {
        var rng = new Rng(72);
        const int vocab = 6, channels = 13;
        float[] table = Rand(rng, vocab * channels);
        Half[] half = table.Select(v => (Half)v).ToArray();
        var bf = new ushort[table.Length];
        BFloat16.FromSingle(table, bf);
        int[] ids = [5, 0, 3, 3];
        float[] fromHalf = new float[ids.Length * channels], fromBf = new float[ids.Length * channels];
        Embedding.Forward<Half>(half, ids, fromHalf, vocab, channels);
        Embedding.Forward<ushort>(bf, ids, fromBf, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
            for (int c = 0; c < channels; c++)
            {
                Assert.Equal((float)half[ids[t] * channels + c], fromHalf[t * channels + c]);
                Assert.Equal(BFloat16.ToSingle(bf[ids[t] * channels + c]), fromBf[t * channels + c]);
            }
        Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward<Half>(half, [6], new float[channels], vocab, channels));
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var rng = new Rng(71);
        const int vocab = 4, channels = 3;
        int[] ids = [2, 0, 2, 3];
        double[] table = RandD(rng, vocab * channels), w = RandD(rng, ids.Length * channels), g = new double[vocab * channels];
        double Loss(double[] v) { var o = new double[ids.Length * channels]; EmbeddingReference.Forward<double>(v, ids, o, vocab, channels); return GradCheck.Weighted(o, w); }
        EmbeddingReference.Backward<double>(ids, w, g, vocab, channels);
        GradCheck.Check("Embedding", Loss, table, g);
        Assert.Equal(0.0, g[1 * channels]); // id 1 never looked up
    }

    [Fact]
    public void OutOfRangeIdNamesIdPositionAndVocab()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Forward(new float[10 * 2], [1, 4, 10], new float[6], 10, 2));
        Assert.Contains("token id 10", e.Message);
        Assert.Contains("t=2", e.Message);
        Assert.Contains("V = 10", e.Message);
        var dTable = new float[20];
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Backward([-1, 0], new float[4], dTable, 10, 2));
        Assert.Contains("token id -1", e.Message);
        Assert.All(dTable, v => Assert.Equal(0f, v)); // nothing written before the check failed
        var s = Assert.Throws<ShapeException>(() => Embedding.Forward(new float[19], [1], new float[2], 10, 2));
        Assert.Contains("'table'", s.Message);
        s = Assert.Throws<ShapeException>(() => Embedding.Backward([1, 2], new float[3], dTable, 10, 2));
        Assert.Contains("'dOutput'", s.Message);
    }
}
