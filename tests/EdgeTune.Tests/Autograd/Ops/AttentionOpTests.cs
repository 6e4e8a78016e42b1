using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>Attention on the tape: GQA, sliding window, frozen inputs, shape errors.</summary>
public class AttentionOpTests
{
    [Theory]
    [InlineData(2, 5, 4, 2, 3, 0)]
    [InlineData(1, 7, 3, 1, 2, 3)]
    [InlineData(1, 1, 2, 2, 5, 0)]
    public void QueryKeyValueGradients(int b, int t, int hq, int hkv, int d, int window)
    {
        var rng = new Rng(41);
        using var q = GradCheck.Param("q", [b * t, hq * d], rng);
        using var k = GradCheck.Param("k", [b, t, hkv, d], rng);
        using var v = GradCheck.Param("v", [b * t * hkv * d], rng);
        int n = OpCheck.Run([q, k, v], (tp, p) => tp.Attention(p[0].Variable, p[1].Variable, p[2].Variable, b, t, hq, hkv, d, window));
        Assert.Equal(b * t * (hq + 2 * hkv) * d, n);
    }

    [Fact]
    public void FrozenKeysAndQueries()
    {
        var rng = new Rng(42);
        using var q = GradCheck.Param("q", [1, 4, 4, 2], rng, trainable: false);
        using var k = GradCheck.Param("k", [1, 4, 2, 2], rng, trainable: false);
        using var v = GradCheck.Param("v", [1, 4, 2, 2], rng);
        Assert.Equal(16, OpCheck.Run([q, k, v], (tp, p) => tp.Attention(p[0].Variable, p[1].Variable, p[2].Variable, 1, 4, 4, 2, 2, scale: 0.9)));
        Assert.Null(q.Grad);
        Assert.Null(k.Grad);
    }

    [Fact]
    public void FirstPositionCopiesItsValue()
    {
        var rng = new Rng(43);
        using var q = GradCheck.Param("q", [1, 3, 2, 2], rng);
        using var k = GradCheck.Param("k", [1, 3, 1, 2], rng);
        using var v = GradCheck.Param("v", [1, 3, 1, 2], rng);
        using var tape = new Tape();
        var y = tape.Attention(q.Variable, k.Variable, v.Variable, 1, 3, 2, 1, 2).Value.ReadOnlySpan<double>();
        var vv = v.Value.ReadOnlySpan<double>();
        // causal: position 0 sees only key 0, so both query heads output v[0]
        Assert.Equal([vv[0], vv[1], vv[0], vv[1]], y.Slice(0, 4).ToArray());
    }

    [Fact]
    public void WrongElementCountIsNamed()
    {
        var rng = new Rng(44);
        using var q = GradCheck.Param("q", [1, 3, 2, 2], rng);
        using var k = GradCheck.Param("k", [1, 3, 2, 2], rng);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.Attention(q.Variable, k.Variable, k.Variable, 1, 3, 2, 1, 2));
        Assert.Contains("Attention", e.Message);
        Assert.Contains("'k'", e.Message);
    }
}
