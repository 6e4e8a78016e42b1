using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests;

/// <summary>
/// The one central-difference gradient checker of the tests, in double precision: the numerical
/// derivative of a scalar loss f is (f(x + h·e_i) − f(x − h·e_i)) / 2h, one coordinate at a time,
/// compared with an analytic gradient element by element:
/// |analytic − numeric| ≤ rtol·max(|analytic|, |numeric|) + atol.
/// </summary>
/// <remarks>
/// Two entries share that rule. The main one, <see cref="Check(IEnumerable{Parameter}, Func{Tape, Variable}, double, double, double)"/>,
/// runs a graph recorded on a <see cref="Tape"/> over F64 parameters and compares every trainable
/// parameter's gradient; it also asserts frozen parameters got no gradient. The plain one,
/// <see cref="Check(string, Func{double[], double}, double[], double[], double, double, double)"/>,
/// checks a kernel's backward given as a flat vector against a <c>Func&lt;double[], double&gt;</c>.
/// </remarks>
public static class GradCheck
{
    /// <summary>An F64 parameter of <paramref name="shape"/> filled uniformly in ±<paramref name="scale"/>.</summary>
    public static Parameter Param(string name, int[] shape, Rng rng, bool trainable = true, double scale = 1.0)
    {
        var t = Tensor.Zeros(DType.F64, shape, name);
        var s = t.Span<double>();
        for (int i = 0; i < s.Length; i++) s[i] = scale * (2 * rng.NextDouble() - 1);
        return new Parameter(name, t, trainable);
    }

    /// <summary>
    /// <paramref name="build"/> records a graph over the F64 <paramref name="parameters"/> on the given
    /// tape and returns a scalar loss. One backward from zeroed gradients gives the analytic gradient
    /// of every trainable parameter, compared with central differences of the loss (evaluated on
    /// non-recording tapes). Returns the number of elements compared (so a test can assert it did work).
    /// </summary>
    public static int Check(IEnumerable<Parameter> parameters, Func<Tape, Variable> build,
        double h = 1e-6, double rtol = 1e-6, double atol = 1e-9)
    {
        var ps = parameters.ToList();
        foreach (var p in ps)
            if (p.Value.DType != DType.F64)
                throw new ArgumentException($"grad check: parameter '{p.Name}' is {p.Value.DType}; the checker runs in F64");
        foreach (var p in ps) p.ZeroGrad();

        using (var tape = new Tape()) tape.Backward(build(tape));
        foreach (var p in ps.Where(p => !p.Trainable))
            if (p.Grad is not null) throw new Xunit.Sdk.XunitException($"frozen parameter '{p.Name}' has a gradient tensor");

        int compared = 0;
        var failures = new List<string>();
        foreach (var p in ps.Where(p => p.Trainable))
        {
            double[] analytic = p.Grad!.ReadOnlySpan<double>().ToArray();
            double[] numeric = NumericInPlace(_ => Evaluate(build), p.Value.Span<double>(), h);
            Compare(p.Name, analytic, numeric, rtol, atol, failures);
            compared += analytic.Length;
        }
        if (failures.Count > 0)
            throw new Xunit.Sdk.XunitException($"gradient check failed at {failures.Count} of {compared} elements:\n" + string.Join("\n", failures.Take(20)));
        return compared;
    }

    /// <summary>Asserts <paramref name="analytic"/> matches central differences of f at x.</summary>
    public static void Check(string what, Func<double[], double> f, double[] x, double[] analytic,
        double h = 1e-6, double rtol = 1e-6, double atol = 1e-8)
    {
        Assert.Equal(x.Length, analytic.Length);
        var failures = new List<string>();
        Compare(what, analytic, Numeric(f, x, h), rtol, atol, failures);
        if (failures.Count > 0)
            Assert.Fail($"gradient check failed at {failures.Count} of {x.Length} elements:\n" + string.Join("\n", failures.Take(20)));
    }

    /// <summary>∂f/∂x_i ≈ (f(x + h·e_i) − f(x − h·e_i)) / 2h for every i; x is restored.</summary>
    public static double[] Numeric(Func<double[], double> f, double[] x, double h = 1e-6)
    {
        var work = (double[])x.Clone();
        return NumericInPlace(_ => f(work), work.AsSpan(), h);
    }

    /// <summary>Central differences of <paramref name="f"/> over the elements of <paramref name="x"/>,
    /// perturbed in place (a parameter's storage) and restored.</summary>
    private static double[] NumericInPlace(Func<int, double> f, Span<double> x, double h)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h;
            double up = f(i);
            x[i] = keep - h;
            double down = f(i);
            x[i] = keep;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    /// <summary>Σ w_i·y_i, the loss whose gradient with respect to y is w (used to seed backward passes).</summary>
    public static double Weighted(ReadOnlySpan<double> y, ReadOnlySpan<double> w)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += w[i] * y[i];
        return s;
    }

    private static void Compare(string what, double[] analytic, double[] numeric, double rtol, double atol, List<string> failures)
    {
        for (int i = 0; i < analytic.Length; i++)
        {
            double a = analytic[i], n = numeric[i];
            double tol = rtol * Math.Max(Math.Abs(a), Math.Abs(n)) + atol;
            if (!(Math.Abs(a - n) <= tol))
                failures.Add($"{what}[{i}]: analytic {a:R}, numeric {n:R} (|diff| {Math.Abs(a - n):E3} > tol {tol:E3})");
        }
    }

    private static double Evaluate(Func<Tape, Variable> build)
    {
        using var tape = new Tape { IsRecording = false };
        return build(tape).Item();
    }
}
