using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>LowRankAdd (y + s·h·Bᵀ, LoRA's update added where it is made): central differences in F64, F32 against F64,
/// and equality with the Scale → Linear → Add chain it replaces.</summary>
public class LowRankAddOpTests
{
    [Theory]
    [InlineData(true, true, true)]
    [InlineData(false, true, true)]
    [InlineData(true, false, true)]
    [InlineData(true, true, false)]
    public void GradientsMatchCentralDifferences(bool yTrainable, bool hTrainable, bool bTrainable)
    {
        var rng = new Rng(81);
        using var y = GradCheck.Param("y", [2, 3, 7], rng, yTrainable);
        using var h = GradCheck.Param("h", [2, 3, 3], rng, hTrainable);
        using var b = GradCheck.Param("B", [7, 3], rng, bTrainable);
        int n = OpCheck.Run([y, h, b], (t, p) => t.LowRankAdd(p[0].Variable, p[1].Variable, p[2].Variable, 0.75));
        Assert.Equal((yTrainable ? 42 : 0) + (hTrainable ? 18 : 0) + (bTrainable ? 21 : 0), n);
    }

    [Fact]
    public void EqualsScaleLinearAddInF32()
    {
        var rng = new Rng(82);
        // odd sizes and enough rows for the packed GEMM paths
        using var y64 = GradCheck.Param("y", [37, 29], rng);
        using var h64 = GradCheck.Param("h", [37, 5], rng);
        using var b64 = GradCheck.Param("B", [29, 5], rng);
        using var y = OpCheck.ToF32(y64);
        using var h = OpCheck.ToF32(h64);
        using var b = OpCheck.ToF32(b64);
        (double[] Z, double[] Dy, double[] Dh, double[] Db) Run(bool fused)
        {
            y.ZeroGrad(); h.ZeroGrad(); b.ZeroGrad();
            using var tape = new Tape();
            var z = fused ? tape.LowRankAdd(y.Variable, h.Variable, b.Variable, 2.5)
                : tape.Add(y.Variable, tape.Linear(tape.Scale(h.Variable, 2.5), b.Variable));
            double[] zv = OpCheck.Values(z.Value); // read before backward frees the tape's values
            tape.Backward(OpCheck.Weighted(tape, z));
            return (zv, OpCheck.Values(y.Grad!), OpCheck.Values(h.Grad!), OpCheck.Values(b.Grad!));
        }
        var f = Run(true);
        var c = Run(false);
        OpCheck.Close("z", c.Z, f.Z, 1e-6, 1e-6);
        OpCheck.Close("dy", c.Dy, f.Dy, 1e-6, 1e-6);
        OpCheck.Close("dh", c.Dh, f.Dh, 1e-5, 1e-5);
        OpCheck.Close("dB", c.Db, f.Db, 1e-5, 1e-5);
    }

    [Fact]
    public void MismatchedShapesAreNamed()
    {
        var rng = new Rng(83);
        using var y = GradCheck.Param("y", [4, 6], rng);
        using var h = GradCheck.Param("h", [4, 2], rng);
        using var b = GradCheck.Param("B", [5, 2], rng);
        using var tape = new Tape();
        var e = Assert.Throws<ShapeException>(() => tape.LowRankAdd(y.Variable, h.Variable, b.Variable, 1.0));
        Assert.Contains("LowRankAdd", e.Message);
        Assert.Contains("'B'", e.Message);
    }
}
