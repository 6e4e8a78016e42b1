using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;
using Xunit;

namespace EdgeTune.Tests.Tensors;

public unsafe class BlockCacheTests
{
    [Fact]
    public void SizeClassesRoundUpByAtMostAnEighth()
    {
        var rng = new Random(7);
        long previous = 0;
        for (long bytes = BlockCache.MinBytes; bytes < 1L << 34; bytes += 1 + (long)(bytes * rng.NextDouble() * 0.05))
        {
            long size = BlockCache.SizeClass(bytes);
            Assert.True(size >= bytes, $"{bytes} rounds down to {size}");
            Assert.True(size <= bytes + bytes / 8, $"{bytes} rounds up to {size}, more than an eighth");
            Assert.True(size >= previous, "size classes are monotone");
            Assert.Equal(size, BlockCache.SizeClass(size)); // a class is its own class
            previous = size;
        }
        Assert.Equal(100, BlockCache.SizeClass(100)); // small blocks are not rounded: they bypass the cache
    }

    [Fact]
    public void AReturnedBlockIsReusedForTheSameClass()
    {
        var cache = new BlockCache();
        byte* a = cache.Rent(3_000_000, out long sa);
        cache.Return(a, sa);
        Assert.Equal(sa, cache.IdleBytes);
        byte* b = cache.Rent(2_900_000, out long sb); // same class (3 MB rounds within 2.9 MB's eighth)
        Assert.Equal(sa, sb);
        Assert.True(a == b, "the idle block of the same class is handed out again");
        Assert.Equal(0, cache.IdleBytes);
        Assert.Equal(0, (long)b % TensorStorage.Alignment);
        cache.Return(b, sb);
        cache.Trim();
        Assert.Equal(0, cache.IdleBytes);
        Assert.Equal(0, cache.HighWaterBytes);
    }

    [Fact]
    public void HeldBytesNeverExceedThePeakOfLiveBytes()
    {
        // Random phases with different size mixes: whatever the order, live + idle stays under the high-water mark
        // of live bytes, so the cache never makes the process hold more than its own peak demand.
        var cache = new BlockCache();
        var rng = new Random(11);
        var live = new List<(nint P, long Size)>();
        long peakLive = 0;
        for (int phase = 0; phase < 6; phase++)
        {
            long scale = 64 * 1024L << phase;
            for (int i = 0; i < 400; i++)
            {
                if (live.Count > 0 && rng.NextDouble() < 0.45)
                {
                    int k = rng.Next(live.Count);
                    cache.Return((byte*)live[k].P, live[k].Size);
                    live.RemoveAt(k);
                }
                else
                {
                    byte* p = cache.Rent(scale + rng.Next((int)scale * 3), out long size);
                    p[0] = 1; p[size - 1] = 1; // the whole class is ours to touch
                    live.Add(((nint)p, size));
                }
                long liveBytes = live.Sum(x => x.Size);
                peakLive = Math.Max(peakLive, liveBytes);
                Assert.Equal(liveBytes, cache.LiveBytes);
                Assert.Equal(peakLive, cache.HighWaterBytes);
                Assert.True(cache.LiveBytes + cache.IdleBytes <= cache.HighWaterBytes,
                    $"phase {phase} op {i}: live {cache.LiveBytes} + idle {cache.IdleBytes} > high water {cache.HighWaterBytes}");
            }
        }
        foreach (var (p, size) in live) cache.Return((byte*)p, size);
        Assert.Equal(0, cache.LiveBytes);
        Assert.True(cache.IdleBytes <= peakLive, $"idle {cache.IdleBytes} after every return exceeds the peak {peakLive}");
        cache.Trim();
        Assert.Equal(0, cache.IdleBytes);
    }

    [Fact]
    public void TensorsGetZeroedMemoryEvenWhenTheBlockIsReused()
    {
        var shape = new[] { 300, 301 }; // 361 KB of F32: above the cache's minimum
        using (var t = Tensor.Zeros(shape)) t.Span<float>().Fill(3f);
        using var again = Tensor.Zeros(shape);
        Assert.All(again.ReadOnlySpan<float>().ToArray(), v => Assert.Equal(0f, v));
    }
}
