using EdgeTune.Tensors;

namespace EdgeTune.Tests.Tensors;

public class TensorTests
{
    [Fact]
    public void ZerosIsAlignedAndZeroed()
    {
        using var t = Tensor.Zeros(DType.F32, [3, 5], "x");
        unsafe { Assert.Equal(0, (long)t.Pointer % 64); }
        Assert.Equal(15, t.ElementCount);
        Assert.All(t.ToFloatArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void RowsAndReshapeAreViews()
    {
        using var t = Tensor.From(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 4, 3);
        var r = t.Rows(1, 2);
        Assert.Equal([3f, 4, 5, 6, 7, 8], r.ToFloatArray());
        r.Span<float>()[0] = 100;
        Assert.Equal(100f, t.ReadOnlySpan<float>()[3]);
        Assert.Equal([2, 6], t.Reshape(2, 6).Shape.ToArray());
        Assert.Throws<ShapeException>(() => t.Reshape(5, 2));
        Assert.Throws<ShapeException>(() => t.Rows(3, 2));
    }

    [Fact]
    public void WrongElementTypeNamesTensor()
    {
        using var t = Tensor.Zeros(DType.F16, [2], "w");
        var e = Assert.Throws<ShapeException>(() => t.Span<float>());
        Assert.Contains("'w'", e.Message);
        Assert.Contains("F16", e.Message);
    }

    [Fact]
    public void MappedFileIsReadOnlyView()
    {
        string path = Path.GetTempFileName();
        try
        {
            var data = new float[] { 1, 2, 3, 4, 5 };
            File.WriteAllBytes(path, [0, 0, 0, 0, .. System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(data)]);
            using var storage = TensorStorage.MapFile(path);
            var t = Tensor.View(storage, 4, DType.F32, [5], "m");
            Assert.Equal(data, t.ToFloatArray());
            Assert.Throws<InvalidOperationException>(() => t.Span<float>());
            Assert.Throws<ShapeException>(() => Tensor.View(storage, 8, DType.F32, [5], "m"));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Bf16RoundTripAndRounding()
    {
        Assert.Equal(1.0f, BFloat16.ToSingle(BFloat16.FromSingle(1.0f)));
        // 1 + 2^-8 is halfway between two BF16 values; ties go to even (1.0).
        Assert.Equal(1.0f, BFloat16.ToSingle(BFloat16.FromSingle(1.0f + 1.0f / 256)));
        Assert.True(float.IsNaN(BFloat16.ToSingle(BFloat16.FromSingle(float.NaN))));
        using var t = Tensor.From(new float[] { 0.5f, -3.25f, 1e-3f }, 3).To(DType.BF16);
        var back = t.ToFloatArray();
        Assert.Equal(0.5f, back[0]);
        Assert.Equal(-3.25f, back[1]);
        Assert.Equal(1e-3f, back[2], 1e-5f);
    }

    [Fact]
    public void RngIsDeterministicAndRestorable()
    {
        var a = new Rng(42);
        var b = new Rng(42);
        Assert.Equal(a.NextUInt64(), b.NextUInt64());
        a.NextGaussian();
        var saved = a.State;
        double x = a.NextGaussian(), y = a.NextDouble();
        a.State = saved;
        Assert.Equal(x, a.NextGaussian());
        Assert.Equal(y, a.NextDouble());
        Assert.NotEqual(new Rng(1).NextUInt64(), new Rng(2).NextUInt64());
    }

    [Fact]
    public void WorkerPoolRunsEveryItemOnceAndPropagatesErrors()
    {
        using var pool = new WorkerPool(3);
        var hits = new int[1000];
        pool.Run(hits.Length, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.Throws<AggregateException>(() => pool.Run(10, i => { if (i == 7) throw new InvalidOperationException("boom"); }));
        pool.Run(4, i => Interlocked.Increment(ref hits[i]));
        Assert.Equal(2, hits[3]);
    }
}
