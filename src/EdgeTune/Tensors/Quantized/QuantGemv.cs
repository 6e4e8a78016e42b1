using System.Runtime.CompilerServices;
using EdgeTune.Tensors.Quantized.Internal;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// y[M, N] (+)= x[M, K]·Wᵀ for decode-sized M (a few rows): W streams from memory once, each of its
/// rows reused from L1 for every row of x. For Q8_0, Q4_0 and Int8 (K a multiple of 32) each row of
/// x is first quantized to Q8 blocks of 32 (f32 scale d = amax/127, q = round(x/d)), and every block
/// product is an exact integer dot (<see cref="QuantIntDot"/>) scaled by d_w·d_x; the only error
/// beyond float rounding is x's quantization, |Δy| ≤ Σ_blocks (d_x/2)·Σ|w| over the block. NF4 (and
/// Int8 rows of other lengths) use the fused float dequantize·dot. Rows of W are split among threads;
/// every output is computed by one thread in one order, so results do not depend on the thread count.
/// </summary>
public static unsafe class QuantGemv
{
    /// <summary>Whether the integer path serves this format and row length.</summary>
    public static bool UsesIntegerDot(QuantFormat format, int cols) =>
        format is QuantFormat.Q8_0 or QuantFormat.Q4_0 || format == QuantFormat.Int8 && cols % QuantIntDot.Block == 0;

    /// <summary>y (+)= x·Wᵀ, x [M, K], y [M, N] (lengths checked by the caller, <see cref="QuantGemm"/>).</summary>
    internal static void Run(ReadOnlySpan<float> x, QuantizedMatrix w, Span<float> y, int m, bool accumulate, SimdWidth width, int threads,
        IntDotPath path = IntDotPath.Auto)
    {
        int n = w.Rows, k = w.Cols;
        bool integer = UsesIntegerDot(w.Format, k);
        sbyte[]? xq = integer ? new sbyte[m * k] : null;
        float[]? xs = integer ? new float[m * (k / QuantIntDot.Block)] : null;
        if (integer)
            for (int i = 0; i < m; i++)
                QuantIntDot.QuantizeActivation(x.Slice(i * k, k), xq.AsSpan(i * k, k), xs.AsSpan(i * (k / QuantIntDot.Block)));
        if (path == IntDotPath.Auto) path = QuantIntDot.Best;
        // Enough rows per task that the pool's hand-off (~µs) stays small against streaming them.
        int tasks = (int)Math.Clamp((long)n * w.RowBytes / (64 * 1024), 1, Math.Max(1, threads) * 4);
        // Below ~4 MFLOP the pool's hand-off costs more than it saves (the fp32 GEMM's threshold).
        if (threads <= 1 || 2L * m * n * k < 1L << 22) tasks = 1;
        fixed (float* px = x)
        fixed (byte* pw = w.Bytes)
        fixed (float* py = y)
        fixed (sbyte* pq = xq)
        fixed (float* ps = xs)
        {
            var job = new Job
            {
                X = px, W = pw, Y = py, Xq = pq, Xs = ps, M = m, N = n, K = k, RowBytes = w.RowBytes,
                Format = w.Format, Accumulate = accumulate, Width = width, Integer = integer, Path = path, Tasks = tasks,
            };
            if (tasks == 1) job.Task(0);
            else WorkerPool.Shared.Run(tasks, job.Task);
        }
    }

    private sealed class Job
    {
        public float* X, Y, Xs;
        public byte* W;
        public sbyte* Xq;
        public int M, N, K, RowBytes, Tasks;
        public QuantFormat Format;
        public bool Accumulate, Integer;
        public SimdWidth Width;
        public IntDotPath Path;

        public void Task(int t)
        {
            int j0 = (int)((long)N * t / Tasks), j1 = (int)((long)N * (t + 1) / Tasks);
            int nb = K / QuantIntDot.Block;
            for (int j = j0; j < j1; j++)
            {
                byte* row = W + (nint)j * RowBytes;
                for (int i = 0; i < M; i++)
                {
                    float s = Integer
                        ? QuantIntDot.Dot(Format, row, K, Xq + (nint)i * K, Xs + (nint)i * nb, Path)
                        : FloatDot(row, X + (nint)i * K);
                    float* d = Y + (nint)i * N + j;
                    *d = Accumulate ? *d + s : s;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private float FloatDot(byte* row, float* x) => Width switch
        {
            SimdWidth.V512 => QuantRowKernels.Dot<V512>(Format, row, K, x),
            SimdWidth.V256 => QuantRowKernels.Dot<V256>(Format, row, K, x),
            SimdWidth.V128 => QuantRowKernels.Dot<V128>(Format, row, K, x),
            _ => (float)QuantReference.Dot(Format, new ReadOnlySpan<byte>(row, RowBytes), new ReadOnlySpan<float>(x, K)),
        };
    }
}
