using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>Name, element type and row-major shape of one tensor in a checkpoint.</summary>
/// <param name="Name">The tensor's name as the file stores it.</param>
/// <param name="DType">Element (or block) type.</param>
/// <param name="Shape">Row-major shape, outermost first (a Linear weight is [out, in]).</param>
public sealed record TensorInfo(string Name, DType DType, int[] Shape)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (int d in Shape) n = checked(n * d);
            return n;
        }
    }

    /// <summary>Bytes the tensor occupies in its file.</summary>
    public long ByteLength => DType.ByteSize(ElementCount);

    public override string ToString() => $"{Name} {DType}{ShapeException.Format(Shape)}";
}
