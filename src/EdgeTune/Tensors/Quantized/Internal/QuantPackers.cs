using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized.Internal;

/// <summary>Per-thread float buffer for the rows a quantized packer decodes before laying them
/// out in panels (at most NR rows of one K block, or one row of one N block).</summary>
internal static class QuantScratch
{
    [ThreadStatic] private static float[]? t_buffer;

    public static float[] Get(int floats)
    {
        var b = t_buffer;
        if (b is null || b.Length < floats) t_buffer = b = new float[Math.Max(floats, (b?.Length ?? 0) * 3 / 2)];
        return b;
    }
}

/// <summary>
/// B = Wᵀ for y = x·Wᵀ (the ABt layout): B(p, j) = W[j, p], W quantized [N, K] row-major. For each
/// NR-column panel, the NR rows of W are decoded over the blocks covering steps [pc, pc+kc) into a
/// small buffer, which the F32 transposing pack then lays out; no more than one panel is ever decoded.
/// </summary>
internal readonly unsafe struct QuantBtPacker<TV>(QuantFormat format, byte* w, int rowBytes, int cols) : IGemmBPacker
    where TV : struct, IVec<TV>
{
    private readonly QuantFormat _format = format;
    private readonly byte* _w = w;
    private readonly int _rowBytes = rowBytes, _cols = cols, _bs = format.Info().BlockSize;

    public void Pack(int pc, int kc, int jc, int nc, int nr, float* dst, float* scratch)
    {
        int b0 = pc / _bs, b1 = (pc + kc + _bs - 1) / _bs;
        int ld = (b1 - b0) * _bs, off = pc - b0 * _bs;
        var buffer = QuantScratch.Get(nr * ld);
        fixed (float* buf = buffer)
        {
            for (int jr = 0; jr < nc; jr += nr)
            {
                int cols = Math.Min(nr, nc - jr);
                for (int r = 0; r < cols; r++)
                    QuantRowKernels.DequantizeBlocks<TV>(_format, _w + (nint)(jc + jr + r) * _rowBytes, _cols, b0, b1 - b0, buf + (nint)r * ld);
                GemmPacking.PackB(buf + off, 1, ld, kc, cols, nr, dst + (nint)jr * kc, scratch);
            }
        }
    }
}

/// <summary>
/// B = W for dx = dy·W (the AB layout): B(p, j) = W[p, j], W quantized [N, K]. Each of the kc rows
/// of the block is decoded over the blocks covering columns [jc, jc+nc), then cut into the panels.
/// </summary>
internal readonly unsafe struct QuantBPacker<TV>(QuantFormat format, byte* w, int rowBytes, int cols) : IGemmBPacker
    where TV : struct, IVec<TV>
{
    private readonly QuantFormat _format = format;
    private readonly byte* _w = w;
    private readonly int _rowBytes = rowBytes, _cols = cols, _bs = format.Info().BlockSize;

    public void Pack(int pc, int kc, int jc, int nc, int nr, float* dst, float* scratch)
    {
        int b0 = jc / _bs, b1 = (jc + nc + _bs - 1) / _bs;
        int off = jc - b0 * _bs;
        var buffer = QuantScratch.Get((b1 - b0) * _bs);
        int full = nc / nr * nr;
        fixed (float* buf = buffer)
        {
            float* src = buf + off;
            for (int p = 0; p < kc; p++)
            {
                QuantRowKernels.DequantizeBlocks<TV>(_format, _w + (nint)(pc + p) * _rowBytes, _cols, b0, b1 - b0, buf);
                float* d = dst + (nint)p * nr;
                for (int jr = 0; jr < full; jr += nr, d += (nint)nr * kc)
                    Buffer.MemoryCopy(src + jr, d, nr * sizeof(float), nr * sizeof(float));
                if (full < nc)
                {
                    Buffer.MemoryCopy(src + full, d, (nc - full) * sizeof(float), (nc - full) * sizeof(float));
                    new Span<float>(d + (nc - full), nr - (nc - full)).Clear();
                }
            }
        }
    }
}
