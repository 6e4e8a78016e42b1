using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>
/// The two checks every op test runs on one graph: <see cref="GradCheck"/> in F64 on a seeded
/// weighted sum Σ r⊙y of the graph's output y, and the same graph on F32 copies of the parameters,
/// whose output and gradients must match the F64 run within float tolerance.
/// </summary>
internal static class OpCheck
{
    /// <summary>
    /// <paramref name="build"/> maps a tape and the parameters (F64 first, then their F32 copies, in
    /// the same order) to an output. Returns the number of gradient elements compared.
    /// </summary>
    public static int Run(Parameter[] ps, Func<Tape, Parameter[], Variable> build,
        double rtol = 1e-6, double atol = 1e-9, double rtol32 = 1e-4, double atol32 = 1e-5)
    {
        int n = GradCheck.Check(ps, t => Weighted(t, build(t, ps)), rtol: rtol, atol: atol);
        F32MatchesF64(ps, build, rtol32, atol32);
        return n;
    }

    /// <summary>Σ r⊙y with r seeded by y's size (same r for every call), so dLoss/dy = r.</summary>
    public static Variable Weighted(Tape tape, Variable y)
    {
        if (y.ElementCount == 1) return y.Shape.Length == 0 ? y : tape.Sum(y);
        var rng = new Rng(1000 + (ulong)y.ElementCount);
        var r = new double[y.ElementCount];
        for (int i = 0; i < r.Length; i++) r[i] = 2 * rng.NextDouble() - 1;
        Tensor rt = y.DType == DType.F64 ? Tensor.From<double>(r, y.Shape.ToArray(), "r")
            : Tensor.From<float>(Array.ConvertAll(r, v => (float)v), y.Shape.ToArray(), "r");
        return tape.Sum(tape.Mul(y, Variable.Constant(rt)));
    }

    /// <summary>An F32 copy of an F64 parameter (same name, values rounded, same trainability).</summary>
    public static Parameter ToF32(Parameter p) =>
        new(p.Name, Tensor.From<float>(Array.ConvertAll(p.Value.ReadOnlySpan<double>().ToArray(), v => (float)v), p.Value.Shape.ToArray(), p.Name), p.Trainable);

    public static void F32MatchesF64(Parameter[] ps, Func<Tape, Parameter[], Variable> build, double rtol, double atol)
    {
        using var ps32 = new ParameterCollection(ps.Select(ToF32));
        var (y64, g64) = ForwardBackward(ps, build);
        var (y32, g32) = ForwardBackward(ps32.ToArray(), build);
        Close("output", y64, y32, rtol, atol);
        for (int i = 0; i < ps.Length; i++)
        {
            Assert.Equal(g64[i] is null, g32[i] is null);
            if (g64[i] is { } g) Close($"d{ps[i].Name}", g, g32[i]!, rtol, atol);
        }
    }

    private static (double[] Y, double[]?[] Grads) ForwardBackward(Parameter[] ps, Func<Tape, Parameter[], Variable> build)
    {
        foreach (var p in ps) p.ZeroGrad();
        using var tape = new Tape();
        var y = build(tape, ps);
        double[] values = Values(y.Value);
        tape.Backward(Weighted(tape, y));
        return (values, ps.Select(p => p.Grad is null ? null : Values(p.Grad)).ToArray());
    }

    public static double[] Values(Tensor t) => t.DType == DType.F64 ? t.ReadOnlySpan<double>().ToArray()
        : Array.ConvertAll(t.ReadOnlySpan<float>().ToArray(), v => (double)v);

    /// <summary>|e − a| ≤ rtol·max|e| + atol elementwise: tolerance relative to the tensor's scale.</summary>
    public static void Close(string what, double[] expected, double[] actual, double rtol, double atol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Length == 0 ? 0 : expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= rtol * scale + atol))
                Assert.Fail($"{what}[{i}]: F64 {expected[i]:R}, F32 {actual[i]:R} (scale {scale:E3})");
    }

    /// <summary>An F64 parameter near <paramref name="center"/> (norm weights), ±<paramref name="spread"/>.</summary>
    public static Parameter Around(string name, int n, Rng rng, double center = 1.0, double spread = 0.2)
    {
        var p = GradCheck.Param(name, [n], rng, scale: spread);
        var s = p.Value.Span<double>();
        for (int i = 0; i < s.Length; i++) s[i] += center;
        return p;
    }
}
