using EdgeTune.Federated.UpdateCompression;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Federated.UpdateCompression;

public class UpdateCodecTests
{
    private static float[] Random(int n, ulong seed, float std = 1)
    {
        var x = new float[n];
        new Rng(seed).FillGaussian(x, 0, std);
        return x;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(257)]
    [InlineData(1000)]
    public void Float32RoundTripsExactly(int n)
    {
        var x = Random(n, 1);
        var p = UpdateCodec.EncodeFloat32(x);
        Assert.Equal(UpdateCodec.Float32, UpdateCodec.CodecOf(p));
        Assert.Equal(x, UpdateCodec.Decode(p, n));
    }

    [Theory]
    [InlineData(0, 256)]
    [InlineData(1, 256)]
    [InlineData(257, 256)]
    [InlineData(1000, 7)]
    public void Int8ErrorIsAtMostHalfAStepPerChunk(int n, int chunk)
    {
        var x = Random(n, 2);
        var p = Int8ChunkQuantizer.Encode(x, chunk);
        Assert.Equal(16 + 4 + 4 * ((n + chunk - 1) / chunk) + n, p.Length);
        var y = UpdateCodec.Decode(p, n);
        for (int c = 0; c * chunk < n; c++)
        {
            int end = Math.Min(n, (c + 1) * chunk);
            float max = 0;
            for (int i = c * chunk; i < end; i++) max = Math.Max(max, Math.Abs(x[i]));
            float step = max / 127f;
            for (int i = c * chunk; i < end; i++) Assert.True(Math.Abs(x[i] - y[i]) <= step * 0.5f * 1.0001f, $"value {i}: {x[i]} → {y[i]}");
        }
    }

    [Fact]
    public void TopKKeepsTheLargestMagnitudesWithLowIndexTies()
    {
        float[] x = [0.1f, -5f, 2f, -2f, 0f, 3f, 2f];
        Assert.Equal([1, 2, 3, 5], TopKSparsifier.Select(x, 4));
        var y = UpdateCodec.Decode(TopKSparsifier.Encode(x, 4), 7);
        Assert.Equal([0f, -5f, 2f, -2f, 0f, 3f, 0f], y);
        Assert.Equal(x, UpdateCodec.Decode(TopKSparsifier.Encode(x, 100)));
    }

    [Theory]
    [InlineData(UpdateCodec.Int8, 16)]
    [InlineData(UpdateCodec.TopK, 10)]
    public void ErrorFeedbackMakesTheSumConverge(string codec, int parameter)
    {
        const int n = 200, rounds = 60;
        var ef = new ErrorFeedback(n, codec, parameter);
        var trueSum = new double[n];
        var sentSum = new double[n];
        var rng = new Rng(5);
        double worst = 0;
        for (int r = 0; r < rounds; r++)
        {
            var u = new float[n];
            rng.FillGaussian(u, 0.01f, 0.1f);
            for (int i = 0; i < n; i++) trueSum[i] += u[i];
            var got = UpdateCodec.Decode(ef.Compress(u), n);
            for (int i = 0; i < n; i++) sentSum[i] += got[i];
            // Invariant: what was sent plus what is pending equals what was produced.
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(trueSum[i] - sentSum[i] - ef.Residual[i]) < 1e-4, $"round {r} value {i}");
            if (r == rounds - 1) for (int i = 0; i < n; i++) worst = Math.Max(worst, Math.Abs(trueSum[i] - sentSum[i]));
        }
        double scale = trueSum.Max(Math.Abs);
        Assert.True(worst < 0.25 * scale, $"{codec}: final gap {worst} vs sum scale {scale}");

        // Without error feedback top-k loses most of the mass of small coordinates for good.
        if (codec == UpdateCodec.TopK)
        {
            var plainSum = new double[n];
            var rng2 = new Rng(5);
            for (int r = 0; r < rounds; r++)
            {
                var u = new float[n];
                rng2.FillGaussian(u, 0.01f, 0.1f);
                var got = UpdateCodec.Decode(TopKSparsifier.Encode(u, parameter), n);
                for (int i = 0; i < n; i++) plainSum[i] += got[i];
            }
            double plainGap = Enumerable.Range(0, n).Max(i => Math.Abs(trueSum[i] - plainSum[i]));
            Assert.True(plainGap > 2 * worst, $"plain top-k gap {plainGap} should exceed error-feedback gap {worst}");
        }
    }

    [Theory]
    [InlineData(UpdateCodec.Float32)]
    [InlineData(UpdateCodec.Int8)]
    [InlineData(UpdateCodec.TopK)]
    public void HostileBytesRaiseFormatExceptionOnly(string codec)
    {
        var p = UpdateCodec.Encode(codec, Random(40, 3), codec == UpdateCodec.Int8 ? 8 : 10);
        for (int cut = 0; cut < p.Length; cut++)
            Assert.Throws<FormatException>(() => UpdateCodec.Decode(p.AsSpan(0, cut)));
        Assert.Throws<FormatException>(() => UpdateCodec.Decode(p, 41));
        var huge = (byte[])p.Clone();
        huge[8] = 0xFF; huge[9] = 0xFF; huge[10] = 0xFF; huge[11] = 0x7F; // declares 2^31 − 1 values
        Assert.Throws<FormatException>(() => UpdateCodec.Decode(huge));
        var rng = new Rng(9);
        for (int trial = 0; trial < 2000; trial++)
        {
            var q = (byte[])p.Clone();
            int flips = 1 + rng.NextInt(4);
            for (int f = 0; f < flips; f++) q[rng.NextInt(Math.Min(q.Length, 40))] = (byte)rng.NextInt(256);
            try { UpdateCodec.Decode(q, 40); }
            catch (FormatException) { }
        }
    }
}
