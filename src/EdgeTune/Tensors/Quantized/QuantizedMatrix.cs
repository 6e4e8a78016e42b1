using EdgeTune.Tensors;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// A row-major weight matrix [Rows, Cols] (a linear layer's [out, in]) held in a quantized
/// <see cref="QuantFormat"/>: Rows × <see cref="RowBytes"/> bytes, each row self-contained. The bytes
/// live in a U8 tensor (native or memory-mapped: a GGUF Q8_0/Q4_0 tensor is wrapped without a copy).
/// </summary>
public sealed class QuantizedMatrix : IDisposable
{
    private readonly Tensor _data;
    private readonly int _row0;   // first row of _data this matrix starts at (non-zero only for a row-range view)
    private readonly bool _owns;

    private QuantizedMatrix(string name, QuantFormat format, int rows, int cols, Tensor data)
    {
        Name = name;
        Format = format;
        Rows = rows;
        Cols = cols;
        RowBytes = format.RowBytes(cols);
        if (data.ByteLength != (long)rows * RowBytes)
            throw new ShapeException($"QuantizedMatrix '{name}': {format.Info().Name} [{rows}, {cols}] needs {(long)rows * RowBytes} bytes, got {data.ByteLength}");
        _data = data;
        _owns = true;
    }

    private QuantizedMatrix(QuantizedMatrix parent, int row0, int rows)
    {
        Name = parent.Name;
        Format = parent.Format;
        Rows = rows;
        Cols = parent.Cols;
        RowBytes = parent.RowBytes;
        _data = parent._data;
        _row0 = parent._row0 + row0;
        _owns = false;
    }

    public string Name { get; }
    public QuantFormat Format { get; }
    public int Rows { get; }
    public int Cols { get; }
    public int RowBytes { get; }
    public long ByteLength => (long)Rows * RowBytes;

    /// <summary>The stored bytes (Rows × RowBytes).</summary>
    public ReadOnlySpan<byte> Bytes => _owns ? _data.Bytes : _data.Bytes.Slice(_row0 * RowBytes, Rows * RowBytes);

    /// <summary>Rows [row0, row0+count) as a matrix over the same bytes (no copy; disposing it frees nothing).
    /// The view is valid while this matrix is.</summary>
    internal QuantizedMatrix RowRange(int row0, int count)
    {
        if (row0 < 0 || count < 0 || row0 > Rows - count)
            throw new ArgumentOutOfRangeException(nameof(row0), $"QuantizedMatrix '{Name}': rows [{row0}, {row0 + count}) outside [0, {Rows})");
        return new QuantizedMatrix(this, row0, count);
    }

    /// <summary>The bytes of one row.</summary>
    public ReadOnlySpan<byte> Row(int row)
    {
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"QuantizedMatrix '{Name}' has {Rows} rows");
        return Bytes.Slice(row * RowBytes, RowBytes);
    }

    /// <summary>Quantizes a float matrix [rows, cols] with the format's reference quantizer.</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> weights, int rows, int cols, QuantFormat format, string name = "")
    {
        if (rows < 0 || weights.Length != (long)rows * cols)
            throw new ShapeException($"QuantizedMatrix.Quantize '{name}': {weights.Length} weights for [{rows}, {cols}]");
        int rowBytes = format.RowBytes(cols);
        var data = Tensor.Zeros(DType.U8, [checked(rows * rowBytes)], name);
        var dst = data.Span<byte>();
        for (int r = 0; r < rows; r++)
            QuantReference.QuantizeRow(format, weights.Slice(r * cols, cols), dst.Slice(r * rowBytes, rowBytes));
        return new QuantizedMatrix(name, format, rows, cols, data);
    }

    /// <summary>Quantizes a 2-D float tensor (F32, F16, BF16).</summary>
    public static QuantizedMatrix Quantize(Tensor weight, QuantFormat format)
    {
        if (weight.Rank != 2) throw new ShapeException($"QuantizedMatrix.Quantize: '{weight.Name}' must be 2-D, got {weight.ShapeString}");
        using var f = weight.DType == DType.F32 ? null : weight.To(DType.F32);
        return Quantize((f ?? weight).ReadOnlySpan<float>(), weight.Dim(0), weight.Dim(1), format, weight.Name);
    }

    /// <summary>Wraps stored bytes (a U8 tensor, or a GGUF Q8_0/Q4_0 tensor [rows, cols]) without copying;
    /// takes ownership of <paramref name="data"/>.</summary>
    public static QuantizedMatrix FromStorage(QuantFormat format, int rows, int cols, Tensor data, string? name = null)
    {
        if (data.DType is not (DType.U8 or DType.Q8_0 or DType.Q4_0))
            throw new ShapeException($"QuantizedMatrix '{name ?? data.Name}': stored bytes must be U8, Q8_0 or Q4_0, got {data.DType}");
        if (data.DType == DType.Q8_0 && format != QuantFormat.Q8_0 || data.DType == DType.Q4_0 && format != QuantFormat.Q4_0)
            throw new ShapeException($"QuantizedMatrix '{name ?? data.Name}': tensor dtype {data.DType} does not match format {format}");
        return new QuantizedMatrix(name ?? data.Name, format, rows, cols, data);
    }

    /// <summary>Dequantizes rows [row0, row0+count) into <paramref name="dst"/> (count × Cols floats).</summary>
    public void DequantizeRows(int row0, int count, Span<float> dst)
    {
        if (row0 < 0 || count < 0 || row0 + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(row0), $"QuantizedMatrix '{Name}': rows [{row0}, {row0 + count}) outside [0, {Rows})");
        if (dst.Length < (long)count * Cols)
            throw new ShapeException($"QuantizedMatrix '{Name}': destination has {dst.Length} floats, needs {(long)count * Cols}");
        var bytes = Bytes;
        for (int r = 0; r < count; r++)
            QuantKernels.DequantizeRow(Format, bytes.Slice((row0 + r) * RowBytes, RowBytes), dst.Slice(r * Cols, Cols));
    }

    /// <summary>The whole matrix as floats (for tests, export and merging; kernels never need it).</summary>
    public float[] Dequantize()
    {
        var all = new float[(long)Rows * Cols];
        DequantizeRows(0, Rows, all);
        return all;
    }

    /// <summary>A plain F32 tensor [Rows, Cols] of the dequantized values.</summary>
    public Tensor ToTensor() => Tensor.From<float>(Dequantize(), [Rows, Cols], Name);

    public void Dispose()
    {
        if (_owns) _data.Dispose();
    }
}
