using EdgeTune.Tensors.Quantized.Internal;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// Products with a quantized weight W [N, K] (a linear layer's [out, in]): the forward y = x·Wᵀ and the
/// input gradient dx = dy·W. No dequantized copy of W exists: the packed GEMM driver
/// (<see cref="Gemm"/>'s) asks a quantized B packer for each KC × NC block, which decodes at most one
/// NR-column panel of W at a time straight into the packed layout. For decode-sized M
/// (≤ <see cref="DecodeMaxM"/>), y = x·Wᵀ streams W once through fused dequantize·dot kernels
/// (<see cref="QuantGemv"/>, integer dot products against a Q8-quantized x for Q8_0/Q4_0/Int8).
/// Same inputs and thread count give bit-identical outputs; the packed path is bit-identical for any
/// thread count.
/// </summary>
public static unsafe class QuantGemm
{
    /// <summary>Rows of x at or below which <see cref="ABt"/> runs the GEMV path.</summary>
    public const int DecodeMaxM = 4;

    /// <summary>y[M, N] (+)= x[M, K] · Wᵀ.</summary>
    public static void ABt(ReadOnlySpan<float> x, QuantizedMatrix w, Span<float> y, int m, bool accumulate = false) =>
        Compute(GemmLayout.ABt, x, w, y, m, accumulate, Simd.Width, WorkerPool.Shared.Threads, null, decode: true);

    /// <summary>dx[M, K] (+)= dy[M, N] · W.</summary>
    public static void AB(ReadOnlySpan<float> dy, QuantizedMatrix w, Span<float> dx, int m, bool accumulate = false) =>
        Compute(GemmLayout.AB, dy, w, dx, m, accumulate, Simd.Width, WorkerPool.Shared.Threads, null, decode: false);

    /// <summary>The one entry with width, threads, blocking and the GEMV path explicit (tests drive
    /// every combination). ABt: a = x [M, K], c = y [M, N]; AB: a = dy [M, N], c = dx [M, K].</summary>
    internal static void Compute(GemmLayout layout, ReadOnlySpan<float> a, QuantizedMatrix w, Span<float> c, int m,
        bool accumulate, SimdWidth width, int threads, GemmBlocking? blocking, bool decode)
    {
        string op = layout == GemmLayout.ABt ? "QuantGemm.ABt" : "QuantGemm.AB";
        if (layout is not (GemmLayout.ABt or GemmLayout.AB)) throw new ArgumentOutOfRangeException(nameof(layout), layout, $"{op}: ABt or AB");
        int n = w.Rows, k = w.Cols;
        int inner = layout == GemmLayout.ABt ? k : n, outer = layout == GemmLayout.ABt ? n : k;
        ShapeException.RequireNonNegative(op, "M", m);
        string Dims() => $" (M={m}, weight '{w.Name}' [{n}, {k}] {w.Format.Info().Name})"; // built only on failure (decode allocates nothing)
        if (a.Length < (long)m * inner) throw new ShapeException($"{op}: input has {a.Length} elements, needs {(long)m * inner}{Dims()}");
        if (c.Length < (long)m * outer) throw new ShapeException($"{op}: output has {c.Length} elements, needs {(long)m * outer}{Dims()}");
        if (m == 0 || outer == 0) return;
        if (inner == 0)
        {
            if (!accumulate) c.Slice(0, m * outer).Clear();
            return;
        }
        if (layout == GemmLayout.ABt && decode && m <= DecodeMaxM && width != SimdWidth.Scalar)
        {
            QuantGemv.Run(a, w, c, m, accumulate, width, threads);
            return;
        }
        fixed (float* pa = a)
        fixed (byte* pw = w.Bytes)
        fixed (float* pc = c)
        {
            switch (width)
            {
                case SimdWidth.V512: Run<V512>(layout, pa, w, pw, pc, m, accumulate, threads, blocking); break;
                case SimdWidth.V256: Run<V256>(layout, pa, w, pw, pc, m, accumulate, threads, blocking); break;
                case SimdWidth.V128: Run<V128>(layout, pa, w, pw, pc, m, accumulate, threads, blocking); break;
                default: Panels(layout, a, w, c, m, accumulate); break;
            }
        }
    }

    private static void Run<TV>(GemmLayout layout, float* a, QuantizedMatrix w, byte* pw, float* c, int m,
        bool accumulate, int threads, GemmBlocking? blocking)
        where TV : struct, IVec<TV>
    {
        int n = w.Rows, k = w.Cols;
        if (!TV.IsAccelerated)
        {
            Panels(layout, new ReadOnlySpan<float>(a, m * (layout == GemmLayout.ABt ? k : n)), w,
                new Span<float>(c, m * (layout == GemmLayout.ABt ? n : k)), m, accumulate);
            return;
        }
        bool twelve = GemmDriver.KernelRows(TV.Count) == 12;
        if (layout == GemmLayout.ABt)
        {
            // Decoding costs about half a transposing pack per element on top of it.
            var packer = new QuantBtPacker<TV>(w.Format, pw, w.RowBytes, k);
            if (twelve) GemmDriver.PackedWith<TV, Rows12, QuantBtPacker<TV>>(a, k, 1, packer, 1.5, c, m, k, n, accumulate, threads, blocking);
            else GemmDriver.PackedWith<TV, Rows6, QuantBtPacker<TV>>(a, k, 1, packer, 1.5, c, m, k, n, accumulate, threads, blocking);
        }
        else
        {
            var packer = new QuantBPacker<TV>(w.Format, pw, w.RowBytes, k);
            if (twelve) GemmDriver.PackedWith<TV, Rows12, QuantBPacker<TV>>(a, n, 1, packer, 0.85, c, m, n, k, accumulate, threads, blocking);
            else GemmDriver.PackedWith<TV, Rows6, QuantBPacker<TV>>(a, n, 1, packer, 0.85, c, m, n, k, accumulate, threads, blocking);
        }
    }

    /// <summary>Plain path for machines without SIMD: 64-row panels of W dequantized by the
    /// reference, multiplied by scalar loops.</summary>
    private static void Panels(GemmLayout layout, ReadOnlySpan<float> a, QuantizedMatrix w, Span<float> c, int m, bool accumulate)
    {
        const int Panel = 64;
        int n = w.Rows, k = w.Cols;
        var panel = new float[Panel * k];
        var row = new float[k];
        if (layout == GemmLayout.AB && !accumulate) c.Slice(0, m * k).Clear();
        for (int j0 = 0; j0 < n; j0 += Panel)
        {
            int nb = Math.Min(Panel, n - j0);
            for (int r = 0; r < nb; r++)
            {
                QuantReference.DequantizeRow(w.Format, w.Row(j0 + r), row);
                row.CopyTo(panel.AsSpan(r * k, k));
            }
            for (int i = 0; i < m; i++)
            {
                var ai = a.Slice(i * (layout == GemmLayout.ABt ? k : n));
                if (layout == GemmLayout.ABt)
                    for (int j = 0; j < nb; j++)
                    {
                        float s = 0;
                        for (int p = 0; p < k; p++) s += ai[p] * panel[j * k + p];
                        ref float d = ref c[i * n + j0 + j];
                        d = accumulate ? d + s : s;
                    }
                else
                    for (int j = 0; j < nb; j++)
                    {
                        float g = ai[j0 + j];
                        var ci = c.Slice(i * k, k);
                        for (int p = 0; p < k; p++) ci[p] += g * panel[j * k + p];
                    }
            }
        }
    }
}
