using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>Embedding on the tape: scatter-add backward with repeated ids, I32 id tensors,
/// frozen F16/BF16 tables, out-of-range ids.</summary>
public class EmbeddingOpTests
{
    [Fact]
    public void RepeatedIdsAccumulate()
    {
        using var table = GradCheck.Param("table", [5, 3], new Rng(21));
        int[] ids = [4, 0, 4, 2, 4, 1, 0];
        Assert.Equal(15, OpCheck.Run([table], (t, p) => t.Embedding(p[0].Variable, ids)));
    }

    [Fact]
    public void IdTensorShapeIsKept()
    {
        using var table = GradCheck.Param("table", [6, 5], new Rng(22));
        using var ids = Tensor.From<int>([5, 1, 1, 0, 3, 5], [2, 3], "ids");
        using var tape = new Tape();
        var y = tape.Embedding(table.Variable, ids);
        Assert.Equal([2, 3, 5], y.Shape.ToArray());
        Assert.Equal(table.Value.ReadOnlySpan<double>().Slice(5 * 5, 5).ToArray(), y.Value.ReadOnlySpan<double>().Slice(0, 5).ToArray());
        Assert.Equal(30, OpCheck.Run([table], (t, p) => t.Embedding(p[0].Variable, ids)));
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void FrozenHalfTableIsReadAsStored(DType dtype)
    {
        float[] values = [0.5f, -1.25f, 2f, 3.5f, -0.75f, 1f];
        using var table32 = new Parameter("t32", Tensor.From<float>(values, [3, 2], "t32"), trainable: false);
        using var half = new Parameter("t16", dtype == DType.F16
            ? Tensor.From<Half>(Array.ConvertAll(values, v => (Half)v), [3, 2], "t16")
            : Tensor.From<ushort>(Array.ConvertAll(values, v => BFloat16.FromSingle(v)), [3, 2], "t16"), trainable: false);
        using var tape = new Tape();
        int[] ids = [2, 0, 2];
        Assert.Equal(tape.Embedding(table32, ids).Value.ToFloatArray(), tape.Embedding(half, ids).Value.ToFloatArray());
        Assert.Equal(0, tape.Count);
    }

    [Fact]
    public void OutOfRangeIdIsNamed()
    {
        using var table = GradCheck.Param("table", [4, 2], new Rng(23));
        using var tape = new Tape();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tape.Embedding(table, [1, 4]));
        Assert.Contains("4", e.Message);
        Assert.Contains("t=1", e.Message);
    }

    [Fact]
    public void IdsMustBeI32()
    {
        using var table = GradCheck.Param("table", [4, 2], new Rng(24));
        using var ids = Tensor.From<float>([1f], [1], "ids");
        using var tape = new Tape();
        Assert.Contains("I32", Assert.Throws<ShapeException>(() => tape.Embedding(table.Variable, ids)).Message);
    }
}
