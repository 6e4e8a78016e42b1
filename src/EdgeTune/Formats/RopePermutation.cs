using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// Reorders the rows of a q or k projection between the two RoPE pairings (<see cref="RopeStyle"/>).
/// </summary>
/// <remarks>
/// Within each head of D rows, the half-split layout (HF) rotates row i with row i + D/2, the
/// interleaved layout (GGUF llama, Meta, llama2.c) rotates rows 2i and 2i+1. llama.cpp's converter maps
/// HF to GGUF by sending HF row (h·D + half·D/2 + i) to GGUF row (h·D + 2i + half), for half ∈ {0,1},
/// i &lt; D/2. It uses the attention head count for q_proj and the KV head count for k_proj.
/// Whole rows move (any dtype, even block-quantized, since a block never spans two rows); a bias
/// is a tensor with one element per row.
/// </remarks>
public static class RopePermutation
{
    /// <summary>Row index in the interleaved layout of half-split row <paramref name="row"/>.</summary>
    public static int HfRowToGguf(int row, int headDim)
    {
        int h = row / headDim, r = row % headDim, half = headDim / 2;
        return h * headDim + (r % half) * 2 + r / half;
    }

    /// <summary>Row index in the half-split layout of interleaved row <paramref name="row"/>.</summary>
    public static int GgufRowToHf(int row, int headDim)
    {
        int h = row / headDim, r = row % headDim, half = headDim / 2;
        return h * headDim + (r & 1) * half + r / 2;
    }

    /// <summary>HF (half-split) q/k weight or bias → GGUF (interleaved); a new owning tensor of the same dtype and shape.</summary>
    public static Tensor HfToGguf(Tensor w, int heads) => Permute(w, heads, toGguf: true);

    /// <summary>GGUF (interleaved) q/k weight or bias → HF (half-split); a new owning tensor of the same dtype and shape.</summary>
    public static Tensor GgufToHf(Tensor w, int heads) => Permute(w, heads, toGguf: false);

    /// <summary>Converts between layouts; returns a copy when <paramref name="from"/> equals <paramref name="to"/>.</summary>
    public static Tensor Convert(Tensor w, int heads, RopeStyle from, RopeStyle to) =>
        from == to ? w.Clone() : Permute(w, heads, toGguf: to == RopeStyle.Interleaved);

    /// <summary>Moves rows of <c>rowBytes</c> bytes from <paramref name="src"/> to <paramref name="dst"/> (same length).</summary>
    public static void PermuteRows(ReadOnlySpan<byte> src, Span<byte> dst, int rows, int heads, bool toGguf)
    {
        if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
            throw new ShapeException($"RopePermutation: {rows} rows do not split into {heads} heads of an even size");
        if (src.Length != dst.Length || src.Length % rows != 0)
            throw new ShapeException($"RopePermutation: source {src.Length} bytes / destination {dst.Length} bytes do not hold {rows} equal rows");
        if (src.Overlaps(dst)) throw new ArgumentException("RopePermutation: source and destination overlap");
        int rowBytes = src.Length / rows, headDim = rows / heads;
        for (int r = 0; r < rows; r++)
        {
            int to = toGguf ? HfRowToGguf(r, headDim) : GgufRowToHf(r, headDim);
            src.Slice(r * rowBytes, rowBytes).CopyTo(dst.Slice(to * rowBytes, rowBytes));
        }
    }

    private static unsafe Tensor Permute(Tensor w, int heads, bool toGguf)
    {
        if (w.Rank is not (1 or 2))
            throw new ShapeException($"RopePermutation: tensor '{w.Name}' {w.ShapeString} should be a [rows, in] weight or a [rows] bias");
        int rows = w.Dim(0);
        if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
            throw new ShapeException($"RopePermutation: tensor '{w.Name}' {w.ShapeString}: {rows} rows do not split into {heads} heads of an even size");
        var t = Tensor.Zeros(w.DType, w.Shape.ToArray(), w.Name);
        PermuteRows(w.Bytes, new Span<byte>(t.Pointer, checked((int)t.ByteLength)), rows, heads, toGguf);
        return t;
    }
}
