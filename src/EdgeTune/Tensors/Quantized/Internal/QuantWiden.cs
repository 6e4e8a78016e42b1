using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeTune.Tensors.Quantized.Internal;

/// <summary>
/// Turns 16 packed integer codes into 16 floats: signed bytes converted (Q8_0, Q4_0 after the −8,
/// Int8) or 4-bit codes looked up in the NF4 code book. The widest instructions the machine has are
/// used (AVX-512 one register, AVX2 two, else portable Vector128 widening, which is NEON on ARM64);
/// the width-generic kernels then scale or multiply the floats at their own vector width.
/// </summary>
internal static unsafe class QuantWiden
{
    /// <summary>dst[0..16) = (float)v[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SBytes16(Vector128<sbyte> v, float* dst)
    {
        if (Avx512F.IsSupported)
            Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(v)).Store(dst);
        else if (Avx2.IsSupported)
        {
            Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(v)).Store(dst);
            Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(v, 8))).Store(dst + 8);
        }
        else
        {
            var (lo, hi) = Vector128.Widen(v);
            var (a, b) = Vector128.Widen(lo);
            var (c, d) = Vector128.Widen(hi);
            Vector128.ConvertToSingle(a).Store(dst);
            Vector128.ConvertToSingle(b).Store(dst + 4);
            Vector128.ConvertToSingle(c).Store(dst + 8);
            Vector128.ConvertToSingle(d).Store(dst + 12);
        }
    }

    /// <summary>Low nibbles of 16 bytes minus 8 (Q4_0's first half-block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> LowNibbles(Vector128<byte> v) =>
        (v & Vector128.Create((byte)0x0F)).AsSByte() - Vector128.Create((sbyte)8);

    /// <summary>High nibbles of 16 bytes minus 8 (Q4_0's second half-block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<sbyte> HighNibbles(Vector128<byte> v) =>
        Vector128.ShiftRightLogical(v, 4).AsSByte() - Vector128.Create((sbyte)8);

    /// <summary>dst[i] = book[codes[i]] for 16 codes in 0..15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Lookup16(Vector128<byte> codes, float* book, float* dst)
    {
        if (Avx512F.IsSupported)
        {
            var idx = Avx512F.ConvertToVector512Int32(codes);
            Avx512F.PermuteVar16x32(Vector512.Load(book), idx).Store(dst);
        }
        else if (Avx2.IsSupported)
        {
            Vector256<float> lo = Vector256.Load(book), hi = Vector256.Load(book + 8);
            var i0 = Avx2.ConvertToVector256Int32(codes);
            var i1 = Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(codes, 8));
            // PermuteVar8x32 uses the low 3 bits; bit 3 (moved to the sign) picks the upper half.
            Avx.BlendVariable(Avx2.PermuteVar8x32(lo, i0), Avx2.PermuteVar8x32(hi, i0), Avx2.ShiftLeftLogical(i0, 28).AsSingle()).Store(dst);
            Avx.BlendVariable(Avx2.PermuteVar8x32(lo, i1), Avx2.PermuteVar8x32(hi, i1), Avx2.ShiftLeftLogical(i1, 28).AsSingle()).Store(dst + 8);
        }
        else
        {
            for (int i = 0; i < 16; i++) dst[i] = book[codes.GetElement(i)];
        }
    }

    /// <summary>The f16 at <paramref name="p"/> as float, exactly (finite values by rescaling the
    /// exponent: the 15 magnitude bits placed in a float's exponent/mantissa, times 2^112; subnormal
    /// halves land on float subnormals and come out exact). Inf/NaN go through <see cref="Half"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(byte* p)
    {
        uint h = Unsafe.ReadUnaligned<ushort>(p);
        if ((h & 0x7C00) == 0x7C00) return (float)Unsafe.ReadUnaligned<System.Half>(p);
        float mag = BitConverter.UInt32BitsToSingle((h & 0x7FFF) << 13) * 5192296858534827628530496329220096f; // 2^112
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(mag) | (h & 0x8000) << 16);
    }

    /// <summary>The NF4 code book as 64-byte aligned native floats (permute/lookup source).</summary>
    public static readonly float* Nf4Book = MakeBook();

    private static float* MakeBook()
    {
        var p = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(16 * sizeof(float), 64);
        QuantReference.Nf4CodeBook.CopyTo(new Span<float>(p, 16));
        return p;
    }
}
