using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// A value flowing through a <see cref="Tape"/>: a tensor, whether a gradient flows back to it,
/// and its gradient once backward has produced one.
/// </summary>
/// <remarks>
/// Three kinds exist. A <b>parameter leaf</b> (<see cref="Autograd.Parameter.Variable"/>) shares the
/// parameter's gradient tensor and requires a gradient exactly while the parameter is trainable.
/// A <b>plain leaf</b> (<see cref="Constant"/> or <see cref="Leaf"/>) wraps a tensor the caller owns;
/// a leaf made with <c>requiresGrad: true</c> gets its own gradient, allocated on first use and kept
/// until <see cref="Dispose"/>. An <b>op output</b> is made by an op through the tape, which owns its
/// value and its gradient: the gradient is allocated lazily when a consumer first accumulates into
/// it and freed as soon as its producer's backward has run; the value is freed by
/// <see cref="Tape.Reset"/> (which <see cref="Tape.Backward"/> calls at its end).
/// </remarks>
public sealed class Variable : IDisposable
{
    private Tensor? _grad;
    private readonly bool _requiresGrad;

    internal Variable(Parameter parameter)
    {
        Parameter = parameter;
        Value = parameter.Value;
        Name = parameter.Name;
    }

    internal Variable(Tensor value, string name, bool requiresGrad, TapeOp? producer)
    {
        Value = value;
        Name = name;
        _requiresGrad = requiresGrad;
        Producer = producer;
    }

    /// <summary>An input through which no gradient flows (data, targets, masks).</summary>
    public static Variable Constant(Tensor value, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new Variable(value, name ?? value.Name, requiresGrad: false, producer: null);
    }

    /// <summary>A caller-owned input that may receive a gradient (F32 or F64 only when it does).</summary>
    public static Variable Leaf(Tensor value, string? name = null, bool requiresGrad = true)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (requiresGrad && value.DType is not (DType.F32 or DType.F64))
            throw new ShapeException($"leaf '{name ?? value.Name}': gradients exist for F32 or F64 only, not {value.DType}");
        return new Variable(value, name ?? value.Name, requiresGrad, producer: null);
    }

    public string Name { get; }

    public Tensor Value { get; }

    /// <summary>The parameter behind a parameter leaf; null otherwise.</summary>
    public Parameter? Parameter { get; }

    /// <summary>The op that computed this value; null for leaves.</summary>
    public TapeOp? Producer { get; }

    public bool IsLeaf => Producer is null;

    /// <summary>Whether backward computes a gradient for this value.</summary>
    public bool RequiresGrad => Parameter is not null ? Parameter.Trainable : _requiresGrad;

    /// <summary>The accumulated gradient, or null when none exists (yet, or ever).</summary>
    public Tensor? Grad => Parameter is not null ? Parameter.Grad : _grad;

    public DType DType => Value.DType;

    public ReadOnlySpan<int> Shape => Value.Shape;

    public long ElementCount => Value.ElementCount;

    /// <summary>The single element of a one-element value, widened to double.</summary>
    public double Item()
    {
        if (Value.ElementCount != 1)
            throw new ShapeException($"Item: '{Name}' {Value.ShapeString} is not a single value");
        return Value.DType switch
        {
            DType.F64 => Value.ReadOnlySpan<double>()[0],
            _ => Value.ToFloatArray()[0],
        };
    }

    /// <summary>The gradient buffer to accumulate into, allocated zeroed on first use.</summary>
    /// <exception cref="InvalidOperationException">This value requires no gradient.</exception>
    internal Tensor EnsureGrad()
    {
        if (!RequiresGrad)
            throw new InvalidOperationException($"'{Name}' requires no gradient; ops must skip its backward work");
        if (Parameter is not null) return Parameter.Grad!;
        return _grad ??= Tensor.Zeros(Value.DType, Value.Shape.ToArray(), Name + ".grad");
    }

    /// <summary>Frees the gradient of an op output (its producer has consumed it).</summary>
    internal void ReleaseGrad()
    {
        if (Parameter is not null) return;
        _grad?.Dispose();
        _grad = null;
    }

    /// <summary>Sets the gradient of a leaf to zero.</summary>
    public void ZeroGrad()
    {
        Tensor? g = Grad;
        if (g is not null) TensorMath.Clear(g);
    }

    /// <summary>Frees this variable's own gradient; a parameter's gradient and caller-owned values are untouched.</summary>
    public void Dispose() => ReleaseGrad();

    /// <summary>Frees value and gradient of an op output (called by the tape that owns it).</summary>
    internal void DisposeOwned()
    {
        ReleaseGrad();
        Value.Dispose();
    }

    public override string ToString() => $"{Name} {Value.DType}{Value.ShapeString}{(RequiresGrad ? " (grad)" : "")}";
}
