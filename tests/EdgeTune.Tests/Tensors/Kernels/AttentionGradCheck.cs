namespace EdgeTune.Tests.Tensors.Kernels;

/// <summary>
/// Central-difference gradients in double precision for the kernel tests: the derivative of a
/// scalar loss of a flat parameter vector, one coordinate at a time.
/// </summary>
public static class AttentionGradCheck
{
    /// <summary>∂loss/∂x_i ≈ (loss(x + h·e_i) − loss(x − h·e_i)) / 2h for every i.</summary>
    public static double[] Numeric(Func<double[], double> loss, double[] x, double h = 1e-5)
    {
        var g = new double[x.Length];
        var work = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            double keep = work[i];
            work[i] = keep + h;
            double up = loss(work);
            work[i] = keep - h;
            double down = loss(work);
            work[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    /// <summary>Fails naming the first index where |expected − actual| &gt; atol + rtol·|expected|.</summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double rtol, double atol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (!(Math.Abs(e - a) <= atol + rtol * Math.Abs(e)))
                Assert.Fail($"{what}[{i}]: expected {e:R}, got {a:R} (rtol {rtol}, atol {atol})");
        }
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, double atol, string what)
    {
        var a = new double[actual.Length];
        for (int i = 0; i < a.Length; i++) a[i] = actual[i];
        AssertClose(expected, a, rtol, atol, what);
    }

    public static double[] Gaussian(ulong seed, int n, double std = 1)
    {
        var rng = new EdgeTune.Tensors.Rng(seed);
        var x = new double[n];
        for (int i = 0; i < n; i++) x[i] = std * rng.NextGaussian();
        return x;
    }

    public static float[] ToFloat(double[] x) => Array.ConvertAll(x, v => (float)v);

    public static double[] ToDouble(float[] x) => Array.ConvertAll(x, v => (double)v);
}
