using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// Token embedding: out[t, :] = table[ids[t], :] with table [V, C], ids [T], out [T, C]; backward
/// scatter-adds dTable[ids[t], :] += dOut[t, :] (ACCUMULATES; repeated ids add up, in order of t).
/// Every id is checked before anything is read or written: an id outside 0..V−1 raises
/// <see cref="ArgumentOutOfRangeException"/> naming the id, its position t and V.
/// </summary>
public static class Embedding
{
    /// <summary>output[T, C] = table[ids[T], C].</summary>
    public static void Forward(ReadOnlySpan<float> table, ReadOnlySpan<int> ids, Span<float> output, int vocab, int channels)
    {
        Check("Embedding.Forward", "table", table.Length, "output", output.Length, ids, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
            table.Slice(ids[t] * channels, channels).CopyTo(output.Slice(t * channels, channels));
    }

    /// <summary>output[T, C] = table[ids[T], C] from a table kept as stored: F16 (<see cref="Half"/>)
    /// or BF16 (raw <see cref="ushort"/> bits), widened to float; float tables take the other overload.</summary>
    public static void Forward<TB>(ReadOnlySpan<TB> table, ReadOnlySpan<int> ids, Span<float> output, int vocab, int channels)
        where TB : unmanaged
    {
        Check("Embedding.Forward", "table", table.Length, "output", output.Length, ids, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
        {
            ReadOnlySpan<TB> row = table.Slice(ids[t] * channels, channels);
            Span<float> dst = output.Slice(t * channels, channels);
            if (typeof(TB) == typeof(ushort)) BFloat16.ToSingle(MemoryMarshal.Cast<TB, ushort>(row), dst);
            else if (typeof(TB) == typeof(Half)) TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<TB, Half>(row), dst);
            else if (typeof(TB) == typeof(float)) MemoryMarshal.Cast<TB, float>(row).CopyTo(dst);
            else throw new NotSupportedException($"Embedding.Forward: a table of {typeof(TB).Name} is not supported (F32, F16, BF16)");
        }
    }

    /// <summary>dTable[ids[t], :] += dOutput[t, :]; dTable [V, C], dOutput [T, C].</summary>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dOutput, Span<float> dTable, int vocab, int channels)
    {
        Check("Embedding.Backward", "dTable", dTable.Length, "dOutput", dOutput.Length, ids, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
        {
            Span<float> row = dTable.Slice(ids[t] * channels, channels);
            ReadOnlySpan<float> g = dOutput.Slice(t * channels, channels);
            if (Simd.Width == SimdWidth.Scalar) ElementwiseReference.Add<float>(row, g, row);
            else Map.Binary(row, g, row, new AddOp());
        }
    }

    /// <summary>Checks shapes and every id against the vocabulary size.</summary>
    internal static void Check(string op, string tableName, int tableLength, string rowsName, int rowsLength,
        ReadOnlySpan<int> ids, int vocab, int channels)
    {
        ShapeException.RequireNonNegative(op, "V", vocab);
        ShapeException.RequireNonNegative(op, "C", channels);
        if (tableLength != (long)vocab * channels)
            throw new ShapeException($"{op}: '{tableName}' has {tableLength} elements, expected V·C = {vocab}·{channels} = {(long)vocab * channels}");
        if (rowsLength != (long)ids.Length * channels)
            throw new ShapeException($"{op}: '{rowsName}' has {rowsLength} elements, expected T·C = {ids.Length}·{channels} = {(long)ids.Length * channels}");
        for (int t = 0; t < ids.Length; t++)
            if ((uint)ids[t] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids), ids[t], $"{op}: token id {ids[t]} at position t={t} is outside the vocabulary 0..{vocab - 1} (V = {vocab})");
    }
}

/// <summary>Plain scalar definition of <see cref="Embedding"/>, generic over the element type.</summary>
public static class EmbeddingReference
{
    public static void Forward<T>(ReadOnlySpan<T> table, ReadOnlySpan<int> ids, Span<T> output, int vocab, int channels)
        where T : IFloatingPointIeee754<T>
    {
        Embedding.Check("EmbeddingReference.Forward", "table", table.Length, "output", output.Length, ids, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
            for (int c = 0; c < channels; c++) output[t * channels + c] = table[ids[t] * channels + c];
    }

    public static void Backward<T>(ReadOnlySpan<int> ids, ReadOnlySpan<T> dOutput, Span<T> dTable, int vocab, int channels)
        where T : IFloatingPointIeee754<T>
    {
        Embedding.Check("EmbeddingReference.Backward", "dTable", dTable.Length, "dOutput", dOutput.Length, ids, vocab, channels);
        for (int t = 0; t < ids.Length; t++)
            for (int c = 0; c < channels; c++) dTable[ids[t] * channels + c] += dOutput[t * channels + c];
    }
}
