using System.Runtime.CompilerServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

/// <summary>
/// y[M, N] (+)= x[M, K]·W[N, K]ᵀ for decode-sized M (at most <see cref="MaxRows"/>): the weight W streams from memory
/// once, in groups of four rows, each group reused from L1 for every row of x. W may be F32, F16 (<see cref="Half"/>)
/// or BF16 (raw <see cref="ushort"/>): BF16 rows are read one at a time and widened in registers (each 32-bit load holds two BF16 values; x is
/// reordered once per call into even/odd halves of each 2·lanes block so no cross-lane shuffle is needed), F16 rows
/// are widened into per-thread scratch. Rows of W are split among the pool's threads in contiguous groups of four,
/// handed out dynamically; every output is one dot product computed in one fixed order, so the result does not
/// depend on the thread count. After warm-up a call allocates no managed memory.
/// </summary>
public static unsafe class Gemv
{
    /// <summary>Most rows of x the GEMV path takes (more go to <see cref="Gemm"/>).</summary>
    public const int MaxRows = 4;

    /// <summary>Weight bytes below which a product runs on the calling thread only: handing work to the pool
    /// costs about a microsecond, what streaming this much weight takes.</summary>
    internal const long ParallelBytes = 32 * 1024;

    /// <summary>y[M,N] (+)= x[M,K] · W[N,K]ᵀ with M ≤ <see cref="MaxRows"/>.</summary>
    public static void ABt<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> w, Span<float> y, int m, int k, int n, bool accumulate = false)
        where TW : unmanaged
        => Compute(x, w, y, m, k, n, accumulate, Simd.Width, WorkerPool.Shared);

    /// <summary>The one entry with width and pool explicit (tests drive every combination).</summary>
    internal static void Compute<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> w, Span<float> y, int m, int k, int n, bool accumulate,
        SimdWidth width, WorkerPool pool)
        where TW : unmanaged
    {
        const string op = "Gemv.ABt";
        if (typeof(TW) != typeof(float) && typeof(TW) != typeof(Half) && typeof(TW) != typeof(ushort))
            throw new NotSupportedException($"{op}: W of type {typeof(TW).Name} is not supported (F32 float, F16 Half, BF16 ushort)");
        Gemm.Check(op, x.Length, w.Length, y.Length, m, k, n, (long)n * k);
        if (m > MaxRows) throw new ShapeException($"{op}: M = {m} rows; the GEMV path takes at most {MaxRows} (use Gemm.ABt)");
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) y.Slice(0, m * n).Clear();
            return;
        }
        var job = Job.Rent();
        try
        {
            bool bf16 = typeof(TW) == typeof(ushort) && width != SimdWidth.Scalar;
            int lanes = width switch { SimdWidth.V512 => 16, SimdWidth.V256 => 8, _ => 4 };
            float[] xs = bf16 ? job.XBuffer(m * k) : [];
            if (bf16)
                for (int i = 0; i < m; i++) SplitEvenOdd(x.Slice(i * k, k), xs.AsSpan(i * k, k), 2 * lanes);
            long bytes = (long)n * k * sizeof(TW);
            int groups = (n + 3) / 4;
            int tasks = pool.Threads <= 1 || bytes < ParallelBytes ? 1 : Math.Min(groups, 4 * pool.Threads);
            ReadOnlySpan<float> xin = bf16 ? xs.AsSpan(0, m * k) : x;
            fixed (float* px = xin)
            fixed (TW* pw = w)
            fixed (float* py = y)
            {
                job.X = px; job.W = pw; job.Y = py;
                job.M = m; job.K = k; job.N = n; job.Tasks = tasks; job.Accumulate = accumulate;
                job.Kernel = width switch
                {
                    SimdWidth.V512 => &Task<V512, TW>,
                    SimdWidth.V256 => &Task<V256, TW>,
                    SimdWidth.V128 => &Task<V128, TW>,
                    _ => &ScalarTask<TW>,
                };
                if (tasks == 1) job.Kernel(job, 0);
                else pool.Run(tasks, job.Body);
            }
        }
        finally { Job.Return(job); }
    }

    /// <summary>Reorders each full block of <paramref name="block"/> elements into its even elements then its odd ones
    /// (the order <see cref="IVec{TSelf}.SplitBf16"/> widens BF16 pairs in); the tail past the last block is copied.</summary>
    internal static void SplitEvenOdd(ReadOnlySpan<float> x, Span<float> dst, int block)
    {
        int full = x.Length / block * block, half = block / 2;
        for (int b = 0; b < full; b += block)
            for (int j = 0; j < half; j++)
            {
                dst[b + j] = x[b + 2 * j];
                dst[b + half + j] = x[b + 2 * j + 1];
            }
        x.Slice(full).CopyTo(dst.Slice(full));
    }

    /// <summary>One task: groups of four rows of W [j0, j1), every row of x against each group.</summary>
    private static void Task<TV, TW>(Job job, int t)
        where TV : struct, IVec<TV>
        where TW : unmanaged
    {
        int n = job.N, k = job.K, m = job.M, groups = (n + 3) / 4;
        int j0 = (int)((long)groups * t / job.Tasks) * 4, j1 = Math.Min(n, (int)((long)groups * (t + 1) / job.Tasks) * 4);
        TW* w = (TW*)job.W;
        float* x = job.X, y = job.Y;
        float* scratch = typeof(TW) == typeof(Half) ? GemmBuffers.Current.Scratch(4 * (nint)k) : null;
        for (int j = j0; j < j1; j += 4)
        {
            int cnt = Math.Min(4, j1 - j);
            TW* r0 = w + (nint)j * k;
            TW* r1 = cnt > 1 ? r0 + k : r0, r2 = cnt > 2 ? r0 + 2 * k : r0, r3 = cnt > 3 ? r0 + 3 * k : r0;
            if (scratch != null)
            {
                GemmPacking.Widen(r0, scratch, k); GemmPacking.Widen(r1, scratch + k, k);
                GemmPacking.Widen(r2, scratch + 2 * k, k); GemmPacking.Widen(r3, scratch + 3 * k, k);
            }
            for (int i = 0; i < m; i++)
            {
                float s0, s1, s2, s3;
                if (typeof(TW) == typeof(ushort))
                {
                    // One row at a time: the row streams sequentially (four interleaved BF16 rows measured 1.6x
                    // slower on a weight larger than the cache, the LM head); the x block loads hit L1.
                    s0 = DotBf16<TV>(k, x + (nint)i * k, (ushort*)r0);
                    s1 = cnt > 1 ? DotBf16<TV>(k, x + (nint)i * k, (ushort*)r1) : 0;
                    s2 = cnt > 2 ? DotBf16<TV>(k, x + (nint)i * k, (ushort*)r2) : 0;
                    s3 = cnt > 3 ? DotBf16<TV>(k, x + (nint)i * k, (ushort*)r3) : 0;
                }
                else if (typeof(TW) == typeof(float))
                {
                    // one row at a time, as BF16: on the AMD EPYC (Zen 4) of 2026-12-08 f32 decode went 19.2/24.1 -> 33.9/35.5 tok/s
                    // (1 thread, alternated runs) against four interleaved rows; the Ice Lake Xeon of the session before measured
                    // one row slower there, so this is the machine-dependent choice of the latest machine
                    s0 = DotF32<TV>(k, x + (nint)i * k, (float*)r0);
                    s1 = cnt > 1 ? DotF32<TV>(k, x + (nint)i * k, (float*)r1) : 0;
                    s2 = cnt > 2 ? DotF32<TV>(k, x + (nint)i * k, (float*)r2) : 0;
                    s3 = cnt > 3 ? DotF32<TV>(k, x + (nint)i * k, (float*)r3) : 0;
                }
                else if (scratch != null)
                    GemmMicroKernel.Dot4<TV>(k, x + (nint)i * k, scratch, scratch + k, scratch + 2 * k, scratch + 3 * k, out s0, out s1, out s2, out s3);
                else
                    GemmMicroKernel.Dot4<TV>(k, x + (nint)i * k, (float*)r0, (float*)r1, (float*)r2, (float*)r3, out s0, out s1, out s2, out s3);
                Store(y + (nint)i * n + j, cnt, job.Accumulate, s0, s1, s2, s3);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* d, int cnt, bool accumulate, float s0, float s1, float s2, float s3)
    {
        if (accumulate)
        {
            d[0] += s0;
            if (cnt > 1) d[1] += s1;
            if (cnt > 2) d[2] += s2;
            if (cnt > 3) d[3] += s3;
        }
        else
        {
            d[0] = s0;
            if (cnt > 1) d[1] = s1;
            if (cnt > 2) d[2] = s2;
            if (cnt > 3) d[3] = s3;
        }
    }

    /// <summary>The dot of x (each full 2·lanes block in even/odd order, see <see cref="SplitEvenOdd"/>) with a BF16 row.</summary>
    internal static float DotBf16<TV>(int k, float* x, ushort* w) where TV : struct, IVec<TV>
    {
        TV z = TV.Zero;
        TV e0 = z, o0 = z, e1 = z, o1 = z;
        int c = TV.Count, block = 2 * c, p = 0;
        for (; p <= k - 2 * block; p += 2 * block)
        {
            var (a, b) = TV.SplitBf16(TV.Load(in *(float*)(w + p), 0));
            e0 = TV.Fma(a, TV.Load(in x[p], 0), e0); o0 = TV.Fma(b, TV.Load(in x[p + c], 0), o0);
            (a, b) = TV.SplitBf16(TV.Load(in *(float*)(w + p + block), 0));
            e1 = TV.Fma(a, TV.Load(in x[p + block], 0), e1); o1 = TV.Fma(b, TV.Load(in x[p + block + c], 0), o1);
        }
        for (; p <= k - block; p += block)
        {
            var (a, b) = TV.SplitBf16(TV.Load(in *(float*)(w + p), 0));
            e0 = TV.Fma(a, TV.Load(in x[p], 0), e0); o0 = TV.Fma(b, TV.Load(in x[p + c], 0), o0);
        }
        float s = TV.Sum(TV.Add(TV.Add(e0, o0), TV.Add(e1, o1)));
        for (; p < k; p++) s = MathF.FusedMultiplyAdd(x[p], BFloat16.ToSingle(w[p]), s);
        return s;
    }

    /// <summary>The dot of x with one F32 row, four vectors per step into four accumulators.</summary>
    internal static float DotF32<TV>(int k, float* x, float* w) where TV : struct, IVec<TV>
    {
        TV z = TV.Zero;
        TV d0 = z, d1 = z, d2 = z, d3 = z;
        int c = TV.Count, p = 0;
        for (; p <= k - 4 * c; p += 4 * c)
        {
            d0 = TV.Fma(TV.Load(in w[p], 0), TV.Load(in x[p], 0), d0);
            d1 = TV.Fma(TV.Load(in w[p + c], 0), TV.Load(in x[p + c], 0), d1);
            d2 = TV.Fma(TV.Load(in w[p + 2 * c], 0), TV.Load(in x[p + 2 * c], 0), d2);
            d3 = TV.Fma(TV.Load(in w[p + 3 * c], 0), TV.Load(in x[p + 3 * c], 0), d3);
        }
        for (; p <= k - c; p += c) d0 = TV.Fma(TV.Load(in w[p], 0), TV.Load(in x[p], 0), d0);
        float s = TV.Sum(TV.Add(TV.Add(d0, d1), TV.Add(d2, d3)));
        for (; p < k; p++) s = MathF.FusedMultiplyAdd(x[p], w[p], s);
        return s;
    }

    /// <summary>Plain loops, for machines without SIMD (x in its natural order).</summary>
    private static void ScalarTask<TW>(Job job, int t) where TW : unmanaged
    {
        int n = job.N, k = job.K, groups = (n + 3) / 4;
        int j0 = (int)((long)groups * t / job.Tasks) * 4, j1 = Math.Min(n, (int)((long)groups * (t + 1) / job.Tasks) * 4);
        TW* w = (TW*)job.W;
        for (int i = 0; i < job.M; i++)
            for (int j = j0; j < j1; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(job.X[(nint)i * k + p], Gemm.Widen(w[(nint)j * k + p]), s);
                float* d = job.Y + (nint)i * n + j;
                *d = job.Accumulate ? *d + s : s;
            }
    }

    /// <summary>The state of one call, reused by the next call on the same thread (so a call allocates nothing once warm).</summary>
    private sealed class Job
    {
        [ThreadStatic] private static Job? t_idle;

        public readonly Action<int> Body;
        public delegate*<Job, int, void> Kernel;
        public float* X, Y;
        public void* W;
        public int M, K, N, Tasks;
        public bool Accumulate;
        private float[] _x = [];

        private Job() => Body = t => Kernel(this, t);

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
            j.X = j.Y = null;
            j.W = null;
            t_idle = j;
        }

        public float[] XBuffer(int floats)
        {
            if (_x.Length < floats) _x = new float[floats];
            return _x;
        }
    }
}
