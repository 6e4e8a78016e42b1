using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// The gated MLP activation of Llama: h = silu(g) ⊙ u, with g the gate projection and u the up
/// projection (same shape, any; e.g. (N, F)). Backward: dg += dh·u·silu'(g); du += dh·silu(g), each
/// only when that input requires a gradient. Reads the inputs again in backward; saves nothing.
/// </summary>
public sealed class SwiGluOp : TapeOp
{
    private readonly Variable _g, _u;
    private Variable _h = null!;

    public SwiGluOp(Variable g, Variable u) : base("SwiGlu", g, u)
    {
        _g = g;
        _u = u;
    }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "gate", _g);
        OpChecks.SameDType(Name, _g, _u);
        OpChecks.SameShape(Name, _g, _u);
        _h = NewOutput(tape, _g.DType, _g.Shape, "swiglu");
        if (OpChecks.IsDouble(Name, _g.DType))
            ElementwiseReference.SwiGlu(_g.Value.ReadOnlySpan<double>(), _u.Value.ReadOnlySpan<double>(), _h.Value.Span<double>());
        else
            Elementwise.SwiGlu(_g.Value.ReadOnlySpan<float>(), _u.Value.ReadOnlySpan<float>(), _h.Value.Span<float>());
    }

    protected internal override void Backward()
    {
        Tensor? dh = _h.Grad, dg = GradOf(_g), du = GradOf(_u);
        if (dh is null || (dg is null && du is null)) return;
        // the kernels write both gradients: a side that needs none accumulates into dropped scratch
        int n = checked((int)_g.ElementCount);
        if (_g.DType == DType.F64)
        {
            Span<double> a = dg is null ? new double[n] : dg.Span<double>(), b = du is null ? new double[n] : du.Span<double>();
            ElementwiseReference.SwiGluBackward(_g.Value.ReadOnlySpan<double>(), _u.Value.ReadOnlySpan<double>(), dh.ReadOnlySpan<double>(), a, b);
        }
        else
        {
            Span<float> a = dg is null ? new float[n] : dg.Span<float>(), b = du is null ? new float[n] : du.Span<float>();
            Elementwise.SwiGluBackward(_g.Value.ReadOnlySpan<float>(), _u.Value.ReadOnlySpan<float>(), dh.ReadOnlySpan<float>(), a, b);
        }
    }
}

public static partial class TapeOps
{
    /// <summary>silu(gate) ⊙ up, elementwise (same shape and dtype).</summary>
    public static Variable SwiGlu(this Tape tape, Variable gate, Variable up) => tape.Apply(new SwiGluOp(gate, up));
}
