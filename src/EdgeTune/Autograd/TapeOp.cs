using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// One coarse fused op on a <see cref="Tape"/>: <see cref="Forward"/> computes its outputs and keeps
/// what its backward needs; <see cref="Backward"/> reads its outputs' gradients and ACCUMULATES (+=)
/// into its inputs' gradients.
/// </summary>
/// <remarks>
/// <para>Adding an op is one file under <c>Autograd/Ops/</c>: a sealed subclass plus a one-line
/// extension method on <see cref="Tape"/> in <see cref="TapeOps"/>:</para>
/// <code>
/// public sealed class FooOp(Variable x) : TapeOp("Foo", x)
/// {
///     private Variable _y = null!;
///     protected internal override void Forward(Tape tape)
///     {
///         // x: (N, C) -> y: (N, C); check dtypes/shapes first (ShapeException naming op, tensor, shape)
///         _y = NewOutput(tape, x.DType, x.Shape, "foo");
///         ... compute; save only what Backward needs, and only when NeedsBackward ...
///     }
///     protected internal override void Backward()
///     {
///         Tensor? dy = _y.Grad;            // null when nothing downstream produced a gradient
///         Tensor? dx = GradOf(x);           // null when x requires no gradient: skip that work
///         if (dy is null || dx is null) return;
///         ... dx += f'(x) * dy ...
///     }
/// }
/// public static partial class TapeOps
/// {
///     public static Variable Foo(this Tape tape, Variable x) => tape.Apply(new FooOp(x));
/// }
/// </code>
/// <para>Ops dispatch on the dtype: F32 uses the fast kernels, F64 the generic scalar references
/// (so the whole tape can run in double for gradient checks). An input that needs no gradient gets
/// none: skip its work, or, where a kernel writes several gradients at once, give it scratch.
/// The tape disposes an op after its backward (or at <see cref="Tape.Reset"/>, or right after
/// forward when nothing needs a gradient): override <see cref="Dispose"/> to free tensors the op
/// allocated for itself.</para>
/// </remarks>
public abstract class TapeOp : IDisposable
{
    private readonly Variable?[] _inputs;
    private readonly List<Variable> _outputs = new(1);

    /// <param name="name">Op name used in error messages ("Linear", "MseLoss").</param>
    /// <param name="inputs">Every variable the op reads (null for absent optional inputs).</param>
    protected TapeOp(string name, params Variable?[] inputs)
    {
        Name = name;
        _inputs = inputs;
    }

    public string Name { get; }

    public IReadOnlyList<Variable?> Inputs => _inputs;

    public IReadOnlyList<Variable> Outputs => _outputs;

    /// <summary>True when the tape records this op (some input requires a gradient). Forward may
    /// skip saving state when false.</summary>
    public bool NeedsBackward { get; internal set; }

    internal bool Applied { get; set; }

    /// <summary>Computes the outputs (made with <c>NewOutput</c>).</summary>
    protected internal abstract void Forward(Tape tape);

    /// <summary>Accumulates input gradients from output gradients. Called only when some output has a gradient.</summary>
    protected internal abstract void Backward();

    /// <summary>Allocates a zeroed output owned by <paramref name="tape"/>; it requires a gradient
    /// exactly when this op is recorded.</summary>
    protected Variable NewOutput(Tape tape, DType dtype, ReadOnlySpan<int> shape, string name)
    {
        var value = Tensor.Zeros(dtype, shape.ToArray(), name);
        var v = new Variable(value, name, NeedsBackward, this);
        tape.Own(v);
        _outputs.Add(v);
        return v;
    }

    /// <summary>Adopts <paramref name="value"/> (a tensor the op made, or a view of an input's value) as an
    /// output owned by <paramref name="tape"/>: the tape disposes it at reset (a view frees no storage).
    /// The output's gradient is still a separate, lazily allocated buffer.</summary>
    protected Variable NewOutput(Tape tape, Tensor value, string name)
    {
        ArgumentNullException.ThrowIfNull(value);
        var v = new Variable(value, name, NeedsBackward, this);
        tape.Own(v);
        _outputs.Add(v);
        return v;
    }

    /// <summary>The gradient buffer of <paramref name="input"/> to accumulate into (allocated zeroed on
    /// first use), or null when it requires no gradient — then skip the work for it.</summary>
    protected static Tensor? GradOf(Variable? input) => input is { RequiresGrad: true } ? input.EnsureGrad() : null;

    /// <summary>Frees tensors this op allocated for its backward.</summary>
    public virtual void Dispose() { }

    public override string ToString() => $"{Name}({string.Join(", ", _inputs.Select(i => i?.ToString() ?? "-"))})";
}

/// <summary>
/// Extension methods on <see cref="Tape"/>, one per op, each defined in its op's file. Linear algebra:
/// Linear (bias included), MatMul, Add, Mul, Scale, Sum, Mean, Reshape. Transformer pieces:
/// Embedding, RmsNorm, LayerNorm, Rope (out of place), Attention (causal GQA), SiLU, Gelu, SwiGlu,
/// Softmax, LogSoftmax. Losses (scalar outputs): MseLoss, CrossEntropy, LmHeadCrossEntropy (the LM
/// head fused with the loss; logits never materialised).
/// </summary>
/// <remarks>Tests of a new op: central differences in F64 on the tape and F32 against F64
/// (tests/EdgeTune.Tests/GradCheck.cs and Autograd/Ops/OpCheck.cs).</remarks>
public static partial class TapeOps;
