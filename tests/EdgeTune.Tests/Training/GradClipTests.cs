using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training;
using static EdgeTune.Tests.Training.OptimizerTestUtil;

namespace EdgeTune.Tests.Training;

public class GradClipTests
{
    [Fact]
    public void ClipsToMaxNormAndReturnsPreClipNorm()
    {
        using var a = Param("a", DType.F32, [0, 0]);
        using var b = Param("b", DType.F64, [0]);
        using var frozen = Param("frozen", DType.F32, [0]);
        frozen.Trainable = false;
        SetGrad(a, [3, 0]);
        SetGrad(b, [4]); // global norm 5
        double norm = GradClip.ClipGlobalNorm([a, b, frozen], 1.0);
        Assert.Equal(5.0, norm);
        double scale = 1.0 / (5 + 1e-6);
        Assert.Equal(3 * scale, a.Grad!.ToFloatArray()[0], 6);
        Assert.Equal(4 * scale, b.Grad!.ReadOnlySpan<double>()[0], 12);
        Assert.Equal(1.0, GradClip.GlobalNorm([a, b]), 5);
    }

    [Fact]
    public void BelowMaxNormLeavesGradientsUnchanged()
    {
        using var a = Param("a", DType.F32, [0, 0]);
        SetGrad(a, [0.3, 0.4]);
        Assert.Equal(0.5, GradClip.ClipGlobalNorm([a], 1.0), 6);
        Assert.Equal([0.3f, 0.4f], a.Grad!.ToFloatArray());
    }

    [Fact]
    public void NonFiniteGradientThrowsNamingParameterAndChangesNothing()
    {
        using var a = Param("a", DType.F32, [0, 0]);
        using var b = Param("layers.1.w", DType.F32, [0, 0]);
        SetGrad(a, [30, 40]);
        SetGrad(b, [1, double.NaN]);
        var e = Assert.Throws<NonFiniteException>(() => GradClip.ClipGlobalNorm([a, b], 1.0));
        Assert.Contains("layers.1.w", e.Message);
        Assert.Contains("ClipGlobalNorm", e.Message);
        Assert.Equal([30f, 40f], a.Grad!.ToFloatArray());
        Assert.True(double.IsNaN(GradClip.GlobalNorm([a, b])));
    }
}
