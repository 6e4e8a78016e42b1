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
        var job = Job.Rent();
        try
        {
            int nb = k / QuantIntDot.Block;
            var (xq, xs) = integer ? job.Buffers(m * k, m * nb) : (Array.Empty<sbyte>(), Array.Empty<float>());
            if (integer)
                for (int i = 0; i < m; i++)
                    QuantIntDot.QuantizeActivation(x.Slice(i * k, k), xq.AsSpan(i * k, k), xs.AsSpan(i * nb, nb));
            if (path == IntDotPath.Auto) path = QuantIntDot.Best;
            // The AVX-512 kernels (Q8_0, Q4_0) read x's scales padded to 16-block groups and Q4_0's offsets.
            // (The row's widened scales live on the stack: rows up to 131,072 columns.)
            int nbp = QuantIntDot.PaddedBlocks(nb);
            bool wide = integer && path == IntDotPath.Avx512 && QuantIntDot.Avx512Supported && w.Format is QuantFormat.Q8_0 or QuantFormat.Q4_0 && nbp <= 4096;
            var (xd, xo) = wide ? job.WideBuffers(m * nbp) : (Array.Empty<float>(), Array.Empty<float>());
            // Q4_0 with VBMI: four rows at a time straight from the GGUF blocks, x regrouped (QuantIntDot.DotQ4x4Vbmi).
            bool vbmi = wide && w.Format == QuantFormat.Q4_0 && QuantIntDot.Q4VbmiSupported;
            int xrBytes = QuantIntDot.RegroupedBytes(nb);
            var xr = vbmi ? job.RegroupBuffer(m * xrBytes) : Array.Empty<sbyte>();
            // Rows are handed out in groups of four; below ParallelBytes of weight the pool's hand-off costs more than it saves.
            long bytes = (long)n * w.RowBytes;
            int groups = (n + 3) / 4;
            // Four tasks per thread balance a loaded machine; the VBMI Q4_0 path takes one contiguous run of rows per thread
            // instead (its prefetch runs ahead within a task): measured in bench generate at 2 threads, 1.10–1.14× llama.cpp
            // against 0.81–1.04× with four per thread (three alternated runs each). Q8_0 was inconclusive, so it keeps four.
            int perThread = vbmi ? 1 : 4;
            int tasks = threads <= 1 || bytes < Gemv.ParallelBytes ? 1 : Math.Min(groups, perThread * threads);
            fixed (float* px = x)
            fixed (byte* pw = w.Bytes)
            fixed (float* py = y)
            fixed (sbyte* pq = xq)
            fixed (float* ps = xs)
            fixed (float* pd = xd)
            fixed (float* po = xo)
            fixed (sbyte* pr = xr)
            {
                if (wide)
                    for (int i = 0; i < m; i++)
                    {
                        QuantIntDot.PrepareAvx512(pq + (nint)i * k, ps + (nint)i * nb, nb, pd + (nint)i * nbp, po + (nint)i * nbp);
                        if (vbmi) QuantIntDot.RegroupActivation(pq + (nint)i * k, nb, pr + (nint)i * xrBytes);
                    }
                job.X = px; job.W = pw; job.Y = py; job.Xq = pq; job.Xs = ps;
                job.Xd = pd; job.Xo = po; job.Wide = wide; job.Xr = vbmi ? pr : null; job.XrBytes = xrBytes;
                job.M = m; job.N = n; job.K = k; job.RowBytes = w.RowBytes;
                job.Format = w.Format; job.Accumulate = accumulate; job.Width = width; job.Integer = integer; job.Path = path; job.Tasks = tasks;
                if (tasks == 1) job.Task(0);
                else WorkerPool.Shared.Run(tasks, job.Body);
            }
        }
        finally { Job.Return(job); }
    }

    /// <summary>The state of one call, reused by the next call on the same thread (a call allocates nothing once warm).</summary>
    private sealed class Job
    {
        [ThreadStatic] private static Job? t_idle;

        public readonly Action<int> Body;
        public float* X, Y, Xs, Xd, Xo;
        public byte* W;
        public sbyte* Xq, Xr;
        public int M, N, K, RowBytes, Tasks, XrBytes;
        public QuantFormat Format;
        public bool Accumulate, Integer, Wide;
        public SimdWidth Width;
        public IntDotPath Path;
        private sbyte[] _xq = [];
        private float[] _xs = [];
        private float[] _xd = [], _xo = [];
        private sbyte[] _xr = [];

        private Job() => Body = Task;

        /// <summary>This thread's idle job, or a new one when it is in use (a product called from inside another).</summary>
        public static Job Rent()
        {
            var j = t_idle;
            if (j is null) return new Job();
            t_idle = null;
            return j;
        }

        public static void Return(Job j)
        {
            j.X = j.Y = j.Xs = j.Xd = j.Xo = null;
            j.W = null;
            j.Xq = j.Xr = null;
            t_idle = j;
        }

        public (sbyte[] Q, float[] S) Buffers(int codes, int scales)
        {
            if (_xq.Length < codes) _xq = new sbyte[codes];
            if (_xs.Length < scales) _xs = new float[scales];
            return (_xq, _xs);
        }

        public sbyte[] RegroupBuffer(int bytes)
        {
            if (_xr.Length < bytes) _xr = new sbyte[bytes];
            return _xr;
        }

        public (float[] D, float[] Offset) WideBuffers(int scales)
        {
            if (_xd.Length < scales) { _xd = new float[scales]; _xo = new float[scales]; }
            return (_xd, _xo);
        }

        public void Task(int t)
        {
            int groups = (N + 3) / 4;
            int j0 = (int)((long)groups * t / Tasks) * 4, j1 = Math.Min(N, (int)((long)groups * (t + 1) / Tasks) * 4);
            int nb = K / QuantIntDot.Block;
            if (Wide)
            {
                WideRows(j0, j1, nb);
                return;
            }
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

        /// <summary>Rows [j0, j1) through the AVX-512 kernels: the row's f16 scales widened once, then one dot per row of x.</summary>
        private void WideRows(int j0, int j1, int nb)
        {
            int nbp = QuantIntDot.PaddedBlocks(nb);
            float* dw = stackalloc float[4 * nbp];
            bool q8 = Format == QuantFormat.Q8_0;
            int j = j0;
            if (!q8 && Xr != null)
            {
                // Q4_0, VBMI: four rows at a time, scales taken inside the kernel (no per-row scale pass).
                float* four = stackalloc float[4];
                for (; j + 4 <= j1; j += 4)
                {
                    byte* row = W + (nint)j * RowBytes;
                    // The four rows after the next four asked for in one burst now (measured in bench generate: without any
                    // prefetch decode is ~25% slower; eight rows ahead beat four by ~6% over eight alternated runs, sixteen
                    // was no better; spreading the prefetches over the kernel's steps, or into L2 only, was slower).
                    // (The first step also asks for the next four, which no earlier step did.)
                    if (j == j0 && j + 4 < j1) Prefetch(row + 4 * (nint)RowBytes, 4 * RowBytes);
                    if (j + 8 < j1) Prefetch(row + 8 * (nint)RowBytes, 4 * RowBytes);
                    for (int i = 0; i < M; i++)
                    {
                        QuantIntDot.DotQ4x4Vbmi(row, RowBytes, nb, Xr + (nint)i * XrBytes, Xd + (nint)i * nbp, Xo + (nint)i * nbp, four, (nint)(N - j) * RowBytes);
                        float* d = Y + (nint)i * N + j;
                        for (int r = 0; r < 4; r++) d[r] = Accumulate ? d[r] + four[r] : four[r];
                    }
                }
            }
            else if (!q8)
            {
                // Q4_0: four rows at a time (x loaded once per block for all four, one reduction per row).
                float* four = stackalloc float[4];
                for (; j + 4 <= j1; j += 4)
                {
                    byte* row = W + (nint)j * RowBytes;
                    // The next four rows are asked for now: the first touch of each row (its scales) otherwise waits on
                    // memory as long as the four dots take (perf: RowScales ≈ the dot's share); measured +10–15% decode.
                    if (j + 4 < j1) Prefetch(row + 4 * (nint)RowBytes, 4 * RowBytes);
                    for (int r = 0; r < 4; r++) QuantIntDot.RowScales(row + (nint)r * RowBytes, nb, 18, dw + r * nbp);
                    for (int i = 0; i < M; i++)
                    {
                        QuantIntDot.DotQ4x4Avx512(row, RowBytes, nb, Xq + (nint)i * K, Xd + (nint)i * nbp, Xo + (nint)i * nbp, dw, nbp, four);
                        float* d = Y + (nint)i * N + j;
                        for (int r = 0; r < 4; r++) d[r] = Accumulate ? d[r] + four[r] : four[r];
                    }
                }
            }
            for (; j < j1; j++)
            {
                byte* row = W + (nint)j * RowBytes;
                if (j + 4 < j1) Prefetch(row + 4 * (nint)RowBytes, RowBytes);
                QuantIntDot.RowScales(row, nb, q8 ? 34 : 18, dw);
                for (int i = 0; i < M; i++)
                {
                    float s = q8
                        ? QuantIntDot.DotQ8Avx512(row, nb, Xq + (nint)i * K, Xd + (nint)i * nbp, dw)
                        : QuantIntDot.DotQ4Avx512(row, nb, Xq + (nint)i * K, Xd + (nint)i * nbp, Xo + (nint)i * nbp, dw);
                    float* d = Y + (nint)i * N + j;
                    *d = Accumulate ? *d + s : s;
                }
            }
        }

        /// <summary>Asks for <paramref name="bytes"/> from <paramref name="p"/> into the cache (a prefetch never faults).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Prefetch(byte* p, int bytes)
        {
            for (int o = 0; o < bytes; o += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + o);
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
