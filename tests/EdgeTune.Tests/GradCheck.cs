namespace EdgeTune.Tests;

/// <summary>
/// Central-difference gradient checker in double precision: the numerical gradient of a scalar
/// loss f at x is (f(x + eps·e_i) − f(x − eps·e_i)) / 2eps, compared with an analytic gradient
/// element by element: |a − n| ≤ rtol·max(|a|, |n|) + atol.
/// </summary>
public static class GradCheck
{
    public static double[] Numerical(Func<double[], double> f, double[] x, double eps = 1e-6)
    {
        var g = new double[x.Length];
        var probe = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            probe[i] = x[i] + eps;
            double up = f(probe);
            probe[i] = x[i] - eps;
            double down = f(probe);
            probe[i] = x[i];
            g[i] = (up - down) / (2 * eps);
        }
        return g;
    }

    /// <summary>Asserts the analytic gradient matches central differences of f at x.</summary>
    public static void Check(string what, Func<double[], double> f, double[] x, double[] analytic,
        double eps = 1e-6, double rtol = 1e-6, double atol = 1e-8)
    {
        Assert.Equal(x.Length, analytic.Length);
        double[] numeric = Numerical(f, x, eps);
        for (int i = 0; i < x.Length; i++)
        {
            double a = analytic[i], n = numeric[i];
            double tol = rtol * Math.Max(Math.Abs(a), Math.Abs(n)) + atol;
            if (!(Math.Abs(a - n) <= tol))
                Assert.Fail($"{what}: d/dx[{i}] analytic {a:R} vs numerical {n:R} (|diff| {Math.Abs(a - n):E3} > tol {tol:E3})");
        }
    }

    /// <summary>Σ w_i·y_i, the loss whose gradient with respect to y is w (used to seed backward passes).</summary>
    public static double Weighted(ReadOnlySpan<double> y, ReadOnlySpan<double> w)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += w[i] * y[i];
        return s;
    }
}
