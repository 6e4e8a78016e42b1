using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>Tensor element types of GGML/GGUF, with their file ids.</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>Block sizes of GGML types and their mapping to <see cref="DType"/>.</summary>
public static class GgmlTypeInfo
{
    /// <summary>(elements per block, bytes per block) of a known GGML type, or null for an unknown id.</summary>
    public static (int BlockSize, int BlockBytes)? Layout(GgmlType t) => t switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.BF16 => (1, 2),
        GgmlType.F64 => (1, 8),
        GgmlType.I8 => (1, 1),
        GgmlType.I16 => (1, 2),
        GgmlType.I32 => (1, 4),
        GgmlType.I64 => (1, 8),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => null,
    };

    /// <summary>The EdgeTune dtype for a GGML type, or null where EdgeTune has none.</summary>
    public static DType? ToDType(this GgmlType t) => t switch
    {
        GgmlType.F32 => DType.F32,
        GgmlType.F16 => DType.F16,
        GgmlType.BF16 => DType.BF16,
        GgmlType.F64 => DType.F64,
        GgmlType.I32 => DType.I32,
        GgmlType.I64 => DType.I64,
        GgmlType.Q8_0 => DType.Q8_0,
        GgmlType.Q4_0 => DType.Q4_0,
        _ => null,
    };

    /// <summary>The GGML type for an EdgeTune dtype; throws for U8 (GGML has no unsigned byte type).</summary>
    public static GgmlType ToGgmlType(this DType t) => t switch
    {
        DType.F32 => GgmlType.F32,
        DType.F16 => GgmlType.F16,
        DType.BF16 => GgmlType.BF16,
        DType.F64 => GgmlType.F64,
        DType.I32 => GgmlType.I32,
        DType.I64 => GgmlType.I64,
        DType.Q8_0 => GgmlType.Q8_0,
        DType.Q4_0 => GgmlType.Q4_0,
        _ => throw new NotSupportedException($"GGUF has no tensor type for {t}"),
    };
}
