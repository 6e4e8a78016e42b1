using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Training;

internal static class OptimizerTestUtil
{
    public static Parameter Param(string name, DType dtype, double[] values)
    {
        using var d = Tensor.From<double>(values, [values.Length], name);
        return new Parameter(name, d.To(dtype));
    }

    public static void SetGrad(Parameter p, double[] g)
    {
        if (p.Value.DType == DType.F64) g.CopyTo(p.Grad!.Span<double>());
        else
        {
            var s = p.Grad!.Span<float>();
            for (int i = 0; i < g.Length; i++) s[i] = (float)g[i];
        }
    }

    public static double[] Values(Parameter p) => p.Value.DType == DType.F64
        ? p.Value.ReadOnlySpan<double>().ToArray()
        : p.Value.ToFloatArray().Select(f => (double)f).ToArray();

    public static void Near(double[] expected, double[] actual, double tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
    }
}
