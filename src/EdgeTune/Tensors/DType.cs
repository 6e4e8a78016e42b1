namespace EdgeTune.Tensors;

/// <summary>Element types a <see cref="Tensor"/> can hold.</summary>
/// <remarks>
/// F32 is the compute type. F16 and BF16 are storage types, widened to F32 inside kernels
/// (BF16 is kept as its raw 16-bit pattern). F64 exists for gradient checks and scalar
/// references. Block-quantized types describe a block of elements rather than one element:
/// Q8_0 (GGML): 32 elements in 34 bytes (f16 scale d, then 32 int8 q; value = q·d);
/// Q4_0 (GGML): 32 elements in 18 bytes (f16 scale d, then 16 bytes of nibbles: low nibbles are
/// elements 0..15, high nibbles 16..31; value = (q − 8)·d). More (NF4 ...) are appended by the
/// compression work.
/// </remarks>
public enum DType : byte
{
    F32 = 0,
    F16 = 1,
    BF16 = 2,
    F64 = 3,
    I32 = 4,
    I64 = 5,
    U8 = 6,
    Q8_0 = 7,
    Q4_0 = 8,
}

/// <summary>Sizes and names of each <see cref="DType"/>.</summary>
public static class DTypeInfo
{
    /// <summary>Elements in one storage block (1 for plain types).</summary>
    public static int BlockSize(this DType t) => t switch
    {
        DType.Q8_0 or DType.Q4_0 => 32,
        _ => 1,
    };

    /// <summary>True for block-quantized types (more than one element per block).</summary>
    public static bool IsBlockQuantized(this DType t) => t.BlockSize() > 1;

    /// <summary>Bytes in one storage block.</summary>
    public static int BlockBytes(this DType t) => t switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.F64 => 8,
        DType.I32 => 4,
        DType.I64 => 8,
        DType.U8 => 1,
        DType.Q8_0 => 34,
        DType.Q4_0 => 18,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>Bytes needed to store <paramref name="elements"/> elements.</summary>
    public static long ByteSize(this DType t, long elements)
    {
        int bs = t.BlockSize();
        if (elements % bs != 0)
            throw new ArgumentException($"{t}: {elements} elements is not a multiple of the block size {bs}");
        return elements / bs * t.BlockBytes();
    }

    public static bool IsFloat(this DType t) => t is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    /// <summary>The CLR element type behind a plain dtype (BF16 is raw <see cref="ushort"/>).</summary>
    public static Type ClrType(this DType t) => t switch
    {
        DType.F32 => typeof(float),
        DType.F16 => typeof(Half),
        DType.BF16 => typeof(ushort),
        DType.F64 => typeof(double),
        DType.I32 => typeof(int),
        DType.I64 => typeof(long),
        DType.U8 => typeof(byte),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "no CLR element type"),
    };

    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.F32 :
        typeof(T) == typeof(Half) ? DType.F16 :
        typeof(T) == typeof(ushort) ? DType.BF16 :
        typeof(T) == typeof(double) ? DType.F64 :
        typeof(T) == typeof(int) ? DType.I32 :
        typeof(T) == typeof(long) ? DType.I64 :
        typeof(T) == typeof(byte) ? DType.U8 :
        throw new NotSupportedException($"no dtype for {typeof(T).Name}");
}
