using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors;

/// <summary>
/// An n-dimensional, row-major, contiguous array of one <see cref="DType"/>, viewing a byte range
/// of a <see cref="TensorStorage"/> (aligned native memory or a read-only file mapping).
/// </summary>
/// <remarks>
/// A tensor made by <c>Zeros</c> or <see cref="From{T}"/> owns its storage and frees it on
/// <see cref="Dispose"/>; views (<see cref="View"/>, <see cref="Reshape"/>, <see cref="Rows"/>) share
/// storage with their source and never free it.
/// </remarks>
public sealed unsafe class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly TensorStorage _storage;
    private readonly long _byteOffset;
    private readonly bool _ownsStorage;

    private Tensor(TensorStorage storage, long byteOffset, DType dtype, int[] shape, string name, bool owns)
    {
        long count = CountElements(shape, name);
        long bytes = dtype.ByteSize(count);
        if (byteOffset < 0 || byteOffset + bytes > storage.ByteLength)
            throw new ShapeException($"tensor '{name}': {dtype}{ShapeException.Format(shape)} needs bytes [{byteOffset}, {byteOffset + bytes}) but its storage holds {storage.ByteLength}");
        _storage = storage;
        _byteOffset = byteOffset;
        _shape = shape;
        _ownsStorage = owns;
        DType = dtype;
        Name = name;
        ElementCount = count;
        ByteLength = bytes;
    }

    public string Name { get; set; }
    public DType DType { get; }
    public long ElementCount { get; }
    public long ByteLength { get; }
    public int Rank => _shape.Length;
    public ReadOnlySpan<int> Shape => _shape;
    public bool IsReadOnly => _storage.IsReadOnly;
    public TensorStorage Storage => _storage;

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Dim(int dim)
    {
        int d = dim < 0 ? dim + _shape.Length : dim;
        if ((uint)d >= (uint)_shape.Length)
            throw new ShapeException($"tensor '{Name}' {ShapeString}: has no dimension {dim}");
        return _shape[d];
    }

    public string ShapeString => ShapeException.Format(_shape);

    /// <summary>Address of the first element.</summary>
    public void* Pointer
    {
        get
        {
            _storage.ThrowIfDisposed(Name);
            return _storage.Pointer + _byteOffset;
        }
    }

    public static Tensor Zeros(DType dtype, int[] shape, string name = "")
    {
        int[] s = (int[])shape.Clone();
        long bytes = dtype.ByteSize(CountElements(s, name));
        return new Tensor(TensorStorage.Allocate(bytes), 0, dtype, s, name, owns: true);
    }

    public static Tensor Zeros(params int[] shape) => Zeros(DType.F32, shape);

    /// <summary>A new owning tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor From<T>(ReadOnlySpan<T> data, int[] shape, string name = "") where T : unmanaged
    {
        var t = Zeros(DTypeInfo.Of<T>(), shape, name);
        if (data.Length != t.ElementCount)
            throw new ShapeException($"tensor '{name}': {data.Length} values given for shape {t.ShapeString} ({t.ElementCount} elements)");
        data.CopyTo(t.Span<T>());
        return t;
    }

    public static Tensor From(float[] data, params int[] shape) => From<float>(data, shape);

    /// <summary>A view of <paramref name="storage"/> at <paramref name="byteOffset"/>; it does not own the storage.</summary>
    public static Tensor View(TensorStorage storage, long byteOffset, DType dtype, int[] shape, string name = "") =>
        new(storage, byteOffset, dtype, (int[])shape.Clone(), name, owns: false);

    /// <summary>The same bytes seen with another shape of the same element count.</summary>
    public Tensor Reshape(params int[] shape)
    {
        if (CountElements(shape, Name) != ElementCount)
            throw new ShapeException($"reshape: tensor '{Name}' {ShapeString} has {ElementCount} elements, cannot become {ShapeException.Format(shape)}");
        return new Tensor(_storage, _byteOffset, DType, (int[])shape.Clone(), Name, owns: false);
    }

    /// <summary>A view of <paramref name="count"/> slices along the first dimension, starting at <paramref name="start"/>.</summary>
    public Tensor Rows(int start, int count)
    {
        if (Rank == 0) throw new ShapeException($"rows: tensor '{Name}' is a scalar");
        if (start < 0 || count < 0 || start + count > _shape[0])
            throw new ShapeException($"rows: [{start}, {start + count}) is outside dimension 0 of tensor '{Name}' {ShapeString}");
        long rowElems = _shape[0] == 0 ? 0 : ElementCount / _shape[0];
        int[] s = (int[])_shape.Clone();
        s[0] = count;
        return new Tensor(_storage, _byteOffset + DType.ByteSize(rowElems * start), DType, s, Name, owns: false);
    }

    /// <summary>The elements as a writable span; the dtype must match <typeparamref name="T"/>.</summary>
    public Span<T> Span<T>() where T : unmanaged
    {
        if (_storage.IsReadOnly) throw new InvalidOperationException($"tensor '{Name}' is a read-only mapping; copy it before writing");
        CheckElementType<T>();
        return new Span<T>(Pointer, checked((int)ElementCount));
    }

    /// <summary>The elements as a read-only span; the dtype must match <typeparamref name="T"/>.</summary>
    public ReadOnlySpan<T> ReadOnlySpan<T>() where T : unmanaged
    {
        CheckElementType<T>();
        return new ReadOnlySpan<T>(Pointer, checked((int)ElementCount));
    }

    /// <summary>The raw bytes.</summary>
    public ReadOnlySpan<byte> Bytes => new(Pointer, checked((int)ByteLength));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckElementType<T>() where T : unmanaged
    {
        if (DType.BlockSize() != 1 || Unsafe.SizeOf<T>() != DType.BlockBytes() || DTypeInfo.Of<T>() != DType)
            throw new ShapeException($"tensor '{Name}' holds {DType}, not {typeof(T).Name}");
    }

    /// <summary>The values widened to float (F32, F16, BF16, F64).</summary>
    public float[] ToFloatArray()
    {
        var result = new float[ElementCount];
        switch (DType)
        {
            case DType.F32: ReadOnlySpan<float>().CopyTo(result); break;
            case DType.F16:
                var h = ReadOnlySpan<Half>();
                for (int i = 0; i < h.Length; i++) result[i] = (float)h[i];
                break;
            case DType.BF16: BFloat16.ToSingle(ReadOnlySpan<ushort>(), result); break;
            case DType.F64:
                var d = ReadOnlySpan<double>();
                for (int i = 0; i < d.Length; i++) result[i] = (float)d[i];
                break;
            default: throw new ShapeException($"tensor '{Name}': cannot widen {DType} to float here");
        }
        return result;
    }

    /// <summary>A new owning copy converted to <paramref name="dtype"/> (float types only).</summary>
    public Tensor To(DType dtype)
    {
        var t = Zeros(dtype, _shape, Name);
        if (dtype == DType) { Bytes.CopyTo(new Span<byte>(t.Pointer, checked((int)ByteLength))); return t; }
        float[] f = ToFloatArray();
        switch (dtype)
        {
            case DType.F32: f.CopyTo(t.Span<float>()); break;
            case DType.F16:
                var h = t.Span<Half>();
                for (int i = 0; i < f.Length; i++) h[i] = (Half)f[i];
                break;
            case DType.BF16: BFloat16.FromSingle(f, t.Span<ushort>()); break;
            case DType.F64:
                var d = t.Span<double>();
                for (int i = 0; i < f.Length; i++) d[i] = f[i];
                break;
            default: t.Dispose(); throw new ShapeException($"tensor '{Name}': cannot convert {DType} to {dtype}");
        }
        return t;
    }

    public Tensor Clone() => To(DType);

    public void Dispose()
    {
        if (_ownsStorage) _storage.Dispose();
    }

    public override string ToString() => $"{Name}{(Name.Length > 0 ? " " : "")}{DType}{ShapeString}";

    private static long CountElements(int[] shape, string name)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ShapeException($"tensor '{name}': negative dimension in shape {ShapeException.Format(shape)}");
            n = checked(n * d);
        }
        return n;
    }
}
