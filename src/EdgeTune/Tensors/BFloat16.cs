using System.Runtime.CompilerServices;

namespace EdgeTune.Tensors;

/// <summary>Conversions between float and the raw 16-bit BF16 pattern (the top half of an IEEE float).</summary>
public static class BFloat16
{
    /// <summary>Widens a BF16 bit pattern to float (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Rounds a float to BF16 with round-to-nearest-even; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((u >> 16) | 0x0040u); // quiet NaN
        uint rounding = 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)((u + rounding) >> 16);
    }

    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"BFloat16.ToSingle: destination length {dst.Length} < source length {src.Length}");
        for (int i = 0; i < src.Length; i++) dst[i] = ToSingle(src[i]);
    }

    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"BFloat16.FromSingle: destination length {dst.Length} < source length {src.Length}");
        for (int i = 0; i < src.Length; i++) dst[i] = FromSingle(src[i]);
    }
}
