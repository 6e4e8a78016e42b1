using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// A tensor as a GGUF file describes it. <see cref="Ne"/> is GGML's dimension order (ne[0] is the
/// innermost, contiguous one: a weight of row-major shape [out, in] has ne = [in, out]);
/// <see cref="Shape"/> is the row-major shape (ne reversed).
/// </summary>
/// <param name="Name">Tensor name (llama.cpp naming, e.g. <c>blk.0.attn_q.weight</c>).</param>
/// <param name="Type">GGML element type.</param>
/// <param name="Ne">GGML dimensions, innermost first.</param>
/// <param name="Offset">Byte offset from the start of the data section.</param>
/// <param name="ByteLength">Bytes of tensor data.</param>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Ne, long Offset, long ByteLength)
{
    /// <summary>Row-major shape, outermost first (ne reversed).</summary>
    public int[] Shape
    {
        get
        {
            var s = new int[Ne.Length];
            for (int i = 0; i < Ne.Length; i++) s[i] = checked((int)Ne[Ne.Length - 1 - i]);
            return s;
        }
    }

    /// <summary>The EdgeTune dtype, or null when EdgeTune cannot hold this GGML type.</summary>
    public DType? DType => Type.ToDType();

    /// <summary>GGML dimensions for a row-major shape (shape reversed).</summary>
    public static long[] NeFromShape(ReadOnlySpan<int> shape)
    {
        var ne = new long[shape.Length];
        for (int i = 0; i < shape.Length; i++) ne[i] = shape[shape.Length - 1 - i];
        return ne;
    }
}
