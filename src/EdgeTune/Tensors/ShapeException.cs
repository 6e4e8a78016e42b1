namespace EdgeTune.Tensors;

/// <summary>Raised when an op receives tensors whose shapes, dtypes or values it cannot accept.
/// The message names the op, the tensor and what was expected.</summary>
public sealed class ShapeException : ArgumentException
{
    public ShapeException(string message) : base(message) { }

    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <summary>Throws unless <paramref name="actual"/> has at least <paramref name="needed"/> elements.</summary>
    public static void RequireLength(string op, string tensor, int actual, long needed)
    {
        if (actual < needed)
            throw new ShapeException($"{op}: '{tensor}' has {actual} elements but the shapes need {needed}");
    }

    /// <summary>Throws when a dimension is negative.</summary>
    public static void RequireNonNegative(string op, string dim, int value)
    {
        if (value < 0) throw new ShapeException($"{op}: dimension {dim} = {value} must not be negative");
    }
}
