using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// A named weight: its value tensor, whether it is trained, and (only while trainable) its
/// gradient tensor of the same dtype and shape.
/// </summary>
/// <remarks>
/// A frozen parameter holds no gradient at all: <see cref="Grad"/> is null, its
/// <see cref="Variable"/> does not require a gradient, and ops skip every piece of backward work
/// that only it would need. Making a parameter trainable allocates a zeroed gradient; freezing it
/// frees the gradient. Gradients are accumulated by backward passes and cleared only by
/// <see cref="ZeroGrad"/>. The parameter owns its gradient; whether it owns <see cref="Value"/>
/// is chosen at construction (values are often views into an arena or a mapped checkpoint).
/// </remarks>
public sealed class Parameter : IDisposable
{
    private readonly bool _ownsValue;
    private Tensor? _grad;
    private bool _trainable;
    private Variable? _variable;

    /// <param name="name">Dotted name, as checkpoints spell it ("layers.0.attn.wq").</param>
    /// <param name="value">The weights. A trainable parameter's value must be a writable float tensor.</param>
    /// <param name="trainable">Whether a gradient is kept and optimizers update it.</param>
    /// <param name="ownsValue">Whether <see cref="Dispose"/> also disposes <paramref name="value"/>.</param>
    public Parameter(string name, Tensor value, bool trainable = true, bool ownsValue = true)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        Name = name;
        Value = value;
        _ownsValue = ownsValue;
        Trainable = trainable;
    }

    public string Name { get; }

    public Tensor Value { get; }

    /// <summary>The accumulated gradient (dtype and shape of <see cref="Value"/>); null while frozen.</summary>
    public Tensor? Grad => _grad;

    /// <summary>Setting true allocates a zeroed gradient; setting false frees it.</summary>
    public bool Trainable
    {
        get => _trainable;
        set
        {
            if (value == _trainable) return;
            if (value)
            {
                if (Value.DType is not (DType.F32 or DType.F64))
                    throw new ShapeException($"parameter '{Name}': only F32 or F64 values can be trained, not {Value.DType}{Value.ShapeString}");
                if (Value.IsReadOnly)
                    throw new InvalidOperationException($"parameter '{Name}' views a read-only mapping; copy it before training it");
                _grad = Tensor.Zeros(Value.DType, Value.Shape.ToArray(), Name + ".grad");
            }
            else
            {
                _grad?.Dispose();
                _grad = null;
            }
            _trainable = value;
        }
    }

    /// <summary>Number of elements of <see cref="Value"/>.</summary>
    public long ElementCount => Value.ElementCount;

    /// <summary>The leaf through which this parameter enters a <see cref="Tape"/>; its gradient is <see cref="Grad"/>.</summary>
    public Variable Variable => _variable ??= new Variable(this);

    /// <summary>Sets the gradient to zero (nothing to do while frozen).</summary>
    public void ZeroGrad()
    {
        if (_grad is not null) Internal.TensorMath.Clear(_grad);
    }

    public void Dispose()
    {
        _grad?.Dispose();
        _grad = null;
        _trainable = false;
        if (_ownsValue) Value.Dispose();
    }

    public override string ToString() => $"{Name} {Value.DType}{Value.ShapeString}{(Trainable ? "" : " (frozen)")}";
}
