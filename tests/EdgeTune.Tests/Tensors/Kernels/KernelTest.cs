using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tests.Tensors.Kernels;

/// <summary>Shared helpers of the kernel tests: seeded inputs, width selection, tolerant comparison.</summary>
internal static class KernelTest
{
    public static readonly TheoryData<int> Widths = new() { 128, 256, 512 };

    /// <summary>Runs the instantiation for one width; skips visibly where it is not accelerated here.</summary>
    public static void ForWidth(int bits, Action v128, Action v256, Action v512)
    {
        switch (bits)
        {
            case 128: Skip.IfNot(V128.IsAccelerated, "Vector128 is not accelerated here"); v128(); break;
            case 256: Skip.IfNot(V256.IsAccelerated, "Vector256 is not accelerated here"); v256(); break;
            case 512: Skip.IfNot(V512.IsAccelerated, "Vector512 is not accelerated here"); v512(); break;
            default: throw new ArgumentOutOfRangeException(nameof(bits));
        }
    }

    public static float[] Rand(Rng rng, int n, float low = -3f, float high = 3f)
    {
        var a = new float[n];
        rng.FillUniform(a, low, high);
        return a;
    }

    public static double[] RandD(Rng rng, int n, double low = -2, double high = 2)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = low + (high - low) * rng.NextDouble();
        return a;
    }

    public static double[] ToDouble(ReadOnlySpan<float> a)
    {
        var d = new double[a.Length];
        for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    /// <summary>|expected − actual| ≤ rtol·|expected| + atol for every element (NaN only matches NaN).</summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double rtol, double atol, string what)
        => Close(expected, ToDouble(actual), rtol, atol, what);

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rtol, double atol, string what)
        => Close(ToDouble(expected), actual, rtol, atol, what);

    /// <summary>n seeded normal values times <paramref name="std"/>.</summary>
    public static double[] Gaussian(ulong seed, int n, double std = 1)
    {
        var rng = new Rng(seed);
        var x = new double[n];
        for (int i = 0; i < n; i++) x[i] = std * rng.NextGaussian();
        return x;
    }

    public static float[] ToFloat(double[] x) => Array.ConvertAll(x, v => (float)v);

    /// <summary>|expected − actual| ≤ rtol·|expected| + atol for every element (NaN only matches NaN).</summary>
    public static void Close(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double rtol, double atol, string what)
    {
        Assert.True(expected.Length <= actual.Length, $"{what}: length {actual.Length} < {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            if (e == a) continue;
            if (!(Math.Abs(e - a) <= rtol * Math.Abs(e) + atol))
                Assert.Fail($"{what}: [{i}] expected {e:R}, got {a:R}");
        }
    }
}
