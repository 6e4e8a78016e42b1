namespace EdgeTune.Tensors.Internal;

/// <summary>Shape checks shared by the norm kernels.</summary>
internal static class Norms
{
    public static void CheckMatrix(string op, string name, int length, int rows, int cols)
    {
        ShapeException.RequireNonNegative(op, "R", rows);
        ShapeException.RequireNonNegative(op, "C", cols);
        if (length != (long)rows * cols)
            throw new ShapeException($"{op}: '{name}' has {length} elements, expected R·C = {rows}·{cols} = {(long)rows * cols}");
    }

    public static void CheckVector(string op, string name, int length, int expected, string dim)
    {
        if (length != expected) throw new ShapeException($"{op}: '{name}' has {length} elements, expected {dim} = {expected}");
    }
}
