namespace EdgeTune.Autograd;

/// <summary>A loss, gradient norm or other value that must be finite is NaN or infinite.
/// The message names the op (or optimizer step) and the tensor.</summary>
public sealed class NonFiniteException : ArithmeticException
{
    public NonFiniteException(string op, string tensor, double value)
        : base($"{op}: '{tensor}' is {value} (NaN or infinite); training cannot continue from a non-finite value")
    {
        Op = op;
        Tensor = tensor;
        Value = value;
    }

    /// <summary>The op, loss or step that produced the value.</summary>
    public string Op { get; }

    /// <summary>The tensor (or parameter) that holds it.</summary>
    public string Tensor { get; }

    public double Value { get; }
}
