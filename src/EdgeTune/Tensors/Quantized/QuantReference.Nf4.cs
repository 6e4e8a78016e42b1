using System.Buffers.Binary;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// NF4 with double quantization (QLoRA): 4-bit codes into the NormalFloat-4 code book, one absmax
/// scale per block of 64, and the block scales themselves quantized to int8 around their mean.
/// </summary>
/// <remarks>
/// Row layout (every row self-contained), for a row of C elements (C a multiple of 64), nb = C/64
/// blocks and ng = ceil(nb/256) scale groups:
/// <list type="number">
/// <item>Codes: C/2 bytes, 32 per block. In block b, byte i holds element 64b+i in its low nibble and
/// element 64b+32+i in its high nibble (so a block widens as two contiguous runs of 32).</item>
/// <item>Scale codes: nb bytes, one signed int8 q_b per block.</item>
/// <item>Group headers: ng × 8 bytes, (f32 offset μ_g, f32 step s_g) little-endian, for blocks
/// [256g, 256g+256).</item>
/// </list>
/// Block scale: a_b = μ_g + q_b·s_g, where μ_g is the mean of the group's block absmax values and
/// s_g = max|absmax − μ_g| / 127, q_b = round((absmax_b − μ_g)/s_g) (ties away from zero).
/// Element: w = NF4[code]·a_b. Quantize picks, for w/a_b, the nearest code-book value (ties to the lower
/// code); a block whose decoded scale is not positive is all zeros (code 7).
/// </remarks>
public static partial class QuantReference
{
    /// <summary>The NormalFloat-4 code book (QLoRA, Dettmers et al. 2023): quantiles of N(0,1)
    /// normalised to [-1, 1], with an exact zero.</summary>
    public static ReadOnlySpan<float> Nf4CodeBook =>
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    internal const int Nf4Block = 64;
    internal const int Nf4Group = 256;

    /// <summary>The decoded scale a_b of every block of an NF4 row (nb floats).</summary>
    internal static void Nf4Scales(ReadOnlySpan<byte> src, int cols, Span<float> scales)
    {
        int nb = cols / Nf4Block;
        var codes = src.Slice(cols / 2, nb);
        var headers = src.Slice(cols / 2 + nb);
        for (int b = 0; b < nb; b++)
        {
            int g = b / Nf4Group;
            float mu = BinaryPrimitives.ReadSingleLittleEndian(headers.Slice(8 * g));
            float step = BinaryPrimitives.ReadSingleLittleEndian(headers.Slice(8 * g + 4));
            scales[b] = Nf4Scale(mu, step, (sbyte)codes[b]);
        }
    }

    /// <summary>a = μ + q·s, the one formula quantize and every dequantizer share.</summary>
    internal static float Nf4Scale(float mu, float step, sbyte q) => mu + q * step;

    internal static void QuantizeNf4Row(ReadOnlySpan<float> row, Span<byte> dst)
    {
        int cols = row.Length, nb = cols / Nf4Block;
        Span<float> absmax = nb <= 1024 ? stackalloc float[nb] : new float[nb];
        for (int b = 0; b < nb; b++)
        {
            float amax = 0;
            foreach (float f in row.Slice(b * Nf4Block, Nf4Block)) amax = MathF.Max(amax, MathF.Abs(f));
            absmax[b] = amax;
        }
        Nf4EncodeScales(absmax, dst.Slice(cols / 2, nb), dst.Slice(cols / 2 + nb));
        Nf4EncodeBlocks(row, dst);
    }

    /// <summary>Second-level quantization of a row's block scales: per group of <see cref="Nf4Group"/> blocks an f32
    /// mean μ and step s = max|a − μ|/127 into <paramref name="headers"/>, each scale as the int8 code round((a − μ)/s).</summary>
    internal static void Nf4EncodeScales(ReadOnlySpan<float> blockScales, Span<byte> codes, Span<byte> headers)
    {
        int nb = blockScales.Length;
        for (int g0 = 0, g = 0; g0 < nb; g0 += Nf4Group, g++)
        {
            var grp = blockScales.Slice(g0, Math.Min(Nf4Group, nb - g0));
            double sum = 0;
            foreach (float a in grp) sum += a;
            float mu = (float)(sum / grp.Length);
            float dev = 0;
            foreach (float a in grp) dev = MathF.Max(dev, MathF.Abs(a - mu));
            float step = dev / 127f, inv = step != 0 ? 1f / step : 0f;
            BinaryPrimitives.WriteSingleLittleEndian(headers.Slice(8 * g), mu);
            BinaryPrimitives.WriteSingleLittleEndian(headers.Slice(8 * g + 4), step);
            for (int i = 0; i < grp.Length; i++)
            {
                float q = MathF.Round((grp[i] - mu) * inv, MidpointRounding.AwayFromZero);
                codes[g0 + i] = (byte)(sbyte)Math.Clamp(q, -127f, 127f);
            }
        }
    }

    /// <summary>Writes the nibbles of <paramref name="row"/> into <paramref name="dst"/> against the block scales already
    /// encoded there (each value divided by its decoded scale, then the nearest code).</summary>
    internal static void Nf4EncodeBlocks(ReadOnlySpan<float> row, Span<byte> dst)
    {
        int cols = row.Length, nb = cols / Nf4Block;
        Span<float> scales = nb <= 1024 ? stackalloc float[nb] : new float[nb];
        Nf4Scales(dst, cols, scales);
        var book = Nf4CodeBook;
        for (int b = 0; b < nb; b++)
        {
            float inv = scales[b] > 0 ? 1f / scales[b] : 0f;
            var v = row.Slice(b * Nf4Block, Nf4Block);
            var o = dst.Slice(b * Nf4Block / 2, Nf4Block / 2);
            for (int i = 0; i < Nf4Block / 2; i++)
                o[i] = (byte)(Nf4Nearest(v[i] * inv, book) | Nf4Nearest(v[i + Nf4Block / 2] * inv, book) << 4);
        }
    }

    /// <summary>The code whose value is nearest to <paramref name="x"/> (ties to the lower code).</summary>
    internal static int Nf4Nearest(float x, ReadOnlySpan<float> book)
    {
        int lo = 0;
        for (int step = 8; step > 0; step >>= 1)
        {
            int c = lo + step;
            // Move up while x lies above the midpoint between code c-1 and code c.
            if (c < 16 && x > 0.5f * (book[c - 1] + book[c])) lo = c;
        }
        return lo;
    }

    internal static void DequantizeNf4Row(ReadOnlySpan<byte> src, Span<float> row)
    {
        int cols = row.Length, nb = cols / Nf4Block;
        Span<float> scales = nb <= 1024 ? stackalloc float[nb] : new float[nb];
        Nf4Scales(src, cols, scales);
        var book = Nf4CodeBook;
        for (int b = 0; b < nb; b++)
        {
            float s = scales[b];
            var c = src.Slice(b * Nf4Block / 2, Nf4Block / 2);
            var o = row.Slice(b * Nf4Block, Nf4Block);
            for (int i = 0; i < Nf4Block / 2; i++)
            {
                o[i] = book[c[i] & 0x0F] * s;
                o[i + Nf4Block / 2] = book[c[i] >> 4] * s;
            }
        }
    }
}

public static partial class QuantFormats
{
    /// <summary>NF4 row: Cols/2 bytes of codes, one byte per 64-block scale code, and 8 bytes
    /// (f32 offset, f32 step) per group of 256 blocks (layout in <see cref="QuantReference"/>'s NF4 remarks).</summary>
    internal static int Nf4RowBytes(int cols)
    {
        int blocks = cols / 64;
        return cols / 2 + blocks + 8 * ((blocks + 255) / 256);
    }
}
