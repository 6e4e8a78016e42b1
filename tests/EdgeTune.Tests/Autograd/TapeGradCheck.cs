using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd;

/// <summary>
/// Central-difference gradient checker in double precision. <c>build</c> records a graph over F64
/// parameters on the given tape and returns a scalar loss. The analytic gradient of every trainable
/// parameter (one backward from zeroed gradients) is compared with (f(x+h) − f(x−h)) / 2h, element
/// by element: |analytic − numeric| ≤ rtol·max(|analytic|, |numeric|) + atol.
/// </summary>
public static class TapeGradCheck
{
    public static Parameter Param(string name, int[] shape, Rng rng, bool trainable = true, double scale = 1.0)
    {
        var t = Tensor.Zeros(DType.F64, shape, name);
        var s = t.Span<double>();
        for (int i = 0; i < s.Length; i++) s[i] = scale * (2 * rng.NextDouble() - 1);
        return new Parameter(name, t, trainable);
    }

    /// <summary>Runs the check; returns the number of elements compared (so a test can assert it did work).</summary>
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
            for (int i = 0; i < analytic.Length; i++)
            {
                double saved = p.Value.Span<double>()[i];
                p.Value.Span<double>()[i] = saved + h;
                double fPlus = Evaluate(build);
                p.Value.Span<double>()[i] = saved - h;
                double fMinus = Evaluate(build);
                p.Value.Span<double>()[i] = saved;
                double numeric = (fPlus - fMinus) / (2 * h);
                double a = analytic[i];
                if (!(Math.Abs(a - numeric) <= rtol * Math.Max(Math.Abs(a), Math.Abs(numeric)) + atol))
                    failures.Add($"{p.Name}[{i}]: analytic {a:R}, numeric {numeric:R}");
                compared++;
            }
        }
        if (failures.Count > 0)
            throw new Xunit.Sdk.XunitException($"gradient check failed at {failures.Count} of {compared} elements:\n" + string.Join("\n", failures.Take(20)));
        return compared;
    }

    private static double Evaluate(Func<Tape, Variable> build)
    {
        using var tape = new Tape { IsRecording = false };
        return build(tape).Item();
    }
}
