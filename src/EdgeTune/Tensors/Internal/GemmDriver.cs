using System.Runtime.Intrinsics.Arm;

namespace EdgeTune.Tensors.Internal;

/// <summary>Cache blocking of the packed GEMM: MR x NR register tile, KC steps per packed block,
/// MC rows of A per packed A block (L2), NC columns of B per packed B block (L3).</summary>
internal readonly record struct GemmBlocking(int MR, int NR, int KC, int MC, int NC)
{
    /// <summary>Optional override "KC,MC,NC" for tuning runs (EDGETUNE_GEMM_BLOCK).</summary>
    private static readonly int[]? s_override = ParseOverride(Environment.GetEnvironmentVariable("EDGETUNE_GEMM_BLOCK"));

    /// <summary>Blocking for a vector of <paramref name="lanes"/> floats and an MR-row kernel.
    /// Measured on Zen 4 (1 MiB L2): long K blocks win (C is read and written once per 1024 steps,
    /// not per 192), with the A block (MC x KC, ~480 KiB) and the B micro-panel (KC x NR) both in L2
    /// and the B block (KC x NC, 8 MiB) in L3. KC=192 (B micro-panel in L1) was 5-15% slower.</summary>
    public static GemmBlocking For(int lanes, int mr)
    {
        int nr = 2 * lanes;
        int kc = 1024;
        int mc = Math.Max(mr, 480 * 1024 / (kc * sizeof(float)) / mr * mr);
        int nc = Math.Max(nr, 8 * 1024 * 1024 / (kc * sizeof(float)) / nr * nr);
        if (s_override is { } o)
        {
            kc = o[0];
            mc = Math.Max(mr, o[1] / mr * mr);
            nc = Math.Max(nr, o[2] / nr * nr);
        }
        return new GemmBlocking(mr, nr, kc, mc, nc);
    }

    private static int[]? ParseOverride(string? s)
    {
        if (string.IsNullOrEmpty(s)) return null;
        var parts = s.Split(',');
        if (parts.Length != 3) return null;
        var v = new int[3];
        for (int i = 0; i < 3; i++)
            if (!int.TryParse(parts[i], out v[i]) || v[i] <= 0) return null;
        return v;
    }
}

/// <summary>
/// The packed GEMM driver (GotoBLAS loop order): for each NC-column block of B and KC-step block,
/// pack B once; for each MC-row block of A pack A; then sweep NR-column micro-panels of B (kept in
/// L1) against MR-row micro-panels of A (streamed from L2). Threads own disjoint 2-D tiles of C and
/// every element is summed over the same K blocks in the same order, so C is bit-identical for any
/// thread count.
/// </summary>
internal static unsafe class GemmDriver
{
    /// <summary>Rows at or below which the unpacked small-M path runs.</summary>
    public const int SmallM = 16;

    /// <summary>Below this many FLOPs a product runs on the calling thread only.</summary>
    private const long ParallelFlops = 1L << 22;

    /// <summary>
    /// The micro-kernel rows for a width: 12 rows x 2 vectors (24 accumulators) where 32 vector
    /// registers exist at that width (AVX-512 zmm, ARM64 NEON q), else 6 rows (12 accumulators, fits
    /// 16 registers). On Zen 4 the 256-bit kernel is also faster with 6 rows than with 12 (measured
    /// 97 vs 88 GFLOP/s on 2048^3), as the 12-row ymm loop is bound by broadcasts and moves.
    /// </summary>
    public static int KernelRows(int lanes) => lanes switch
    {
        16 => 12,
        4 when AdvSimd.Arm64.IsSupported => 12,
        _ => 6,
    };

    /// <summary>C[M,N] (+)= A·B with A(i,p) = a[i*rsA + p*csA], B(p,j) = b[p*rsB + j*csB]; C row-major.</summary>
    public static void Run<TV, TB>(float* a, nint rsA, nint csA, TB* b, nint rsB, nint csB, float* c,
        int m, int k, int n, bool accumulate, int threads, GemmBlocking? blocking = null)
        where TV : struct, IVec<TV>
        where TB : unmanaged
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) new Span<float>(c, checked(m * n)).Clear();
            return;
        }
        if (2L * m * n * k < ParallelFlops) threads = 1;
        if (m <= SmallM)
            GemmSmall.Run<TV, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads);
        else if (KernelRows(TV.Count) == 12)
            Packed<TV, Rows12, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking);
        else
            Packed<TV, Rows6, TB>(a, rsA, csA, b, rsB, csB, c, m, k, n, accumulate, threads, blocking);
    }

    /// <summary>The packed path with an explicit kernel shape (tests call every shape).</summary>
    public static void Packed<TV, TR, TB>(float* a, nint rsA, nint csA, TB* b, nint rsB, nint csB, float* c,
        int m, int k, int n, bool accumulate, int threads, GemmBlocking? blocking = null)
        where TV : struct, IVec<TV>
        where TR : struct, IGemmRows
        where TB : unmanaged
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) new Span<float>(c, checked(m * n)).Clear();
            return;
        }
        // Packing cost per element: transposing packs (A row-major, B stored [N, K]) run about
        // 3x slower than the row copies; widening F16/BF16 adds to B.
        double costB = (csB == 1 ? 0.35 : 1.0) + (typeof(TB) == typeof(float) ? 0 : 0.5);
        PackedWith<TV, TR, StridedBPacker<TB>>(a, rsA, csA, new StridedBPacker<TB>(b, rsB, csB), costB, c, m, k, n, accumulate, threads, blocking);
    }

    /// <summary>
    /// The packed path with B supplied by a packer (a plain strided matrix, or one decoded as it is
    /// packed, e.g. a quantized weight): the packer only ever materialises one KC x NC block of B,
    /// in the panel layout. <paramref name="costBPerColumn"/> is the packer's cost per element
    /// relative to a plain row copy of A (1.0 for a transposing pack), used to split C among threads.
    /// </summary>
    public static void PackedWith<TV, TR, TP>(float* a, nint rsA, nint csA, TP packer, double costBPerColumn, float* c,
        int m, int k, int n, bool accumulate, int threads, GemmBlocking? blocking = null)
        where TV : struct, IVec<TV>
        where TR : struct, IGemmRows
        where TP : struct, IGemmBPacker
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) new Span<float>(c, checked(m * n)).Clear();
            return;
        }
        // A caller-given blocking (tests: tiny blocks to cross every edge) keeps only KC, MC, NC.
        var blk = blocking is { } o
            ? new GemmBlocking(TR.MR, 2 * TV.Count, o.KC, Math.Max(TR.MR, o.MC / TR.MR * TR.MR), Math.Max(2 * TV.Count, o.NC / (2 * TV.Count) * 2 * TV.Count))
            : GemmBlocking.For(TV.Count, TR.MR);
        var job = new PackedJob<TV, TR, TP>
        {
            A = a, RsA = rsA, CsA = csA, Packer = packer, C = c,
            M = m, K = k, N = n, Accumulate = accumulate, Blk = blk,
        };
        int panelsM = (m + blk.MR - 1) / blk.MR, panelsN = (n + blk.NR - 1) / blk.NR;
        double costA = (csA == 1 ? 1.0 : 0.35) * m, costB = costBPerColumn * n;
        (job.Tm, job.Tn) = Grid(Math.Max(1, threads), panelsM, panelsN, costA, costB);
        (job.Tm, job.Tn) = OverSplit(job.Tm, job.Tn, m, n, panelsM, panelsN);
        int tasks = job.Tm * job.Tn;
        if (tasks == 1) job.Task(0);
        else WorkerPool.Shared.Run(tasks, job.Task);
    }

    /// <summary>Splits C into tm x tn tiles for <paramref name="threads"/> tasks, choosing the split
    /// that packs the least redundant data: A (cost <paramref name="costA"/> per K step) is packed
    /// once per column tile, B (cost <paramref name="costB"/>) once per row tile.</summary>
    internal static (int Tm, int Tn) Grid(int threads, int panelsM, int panelsN, double costA, double costB)
    {
        for (int t = threads; t > 1; t--)
        {
            (int, int) best = (0, 0);
            double bestCost = double.MaxValue;
            for (int tn = 1; tn <= t; tn++)
            {
                if (t % tn != 0) continue;
                int tm = t / tn;
                if (tm > panelsM || tn > panelsN) continue;
                double cost = tm * costB + tn * costA;
                if (cost < bestCost) { bestCost = cost; best = (tm, tn); }
            }
            if (best.Item1 > 0) return best;
        }
        return (1, 1);
    }

    /// <summary>
    /// Cuts the split dimension into up to 4x more tiles than threads while each tile stays large
    /// (at least 1024 columns or 512 rows, so re-packing the other operand per tile costs under ~2%).
    /// The pool hands tiles out dynamically, so a thread slowed by another process gives work away;
    /// results are unchanged because no element's summation depends on the tiling.
    /// </summary>
    internal static (int Tm, int Tn) OverSplit(int tm, int tn, int m, int n, int panelsM, int panelsN)
    {
        if (tm * tn == 1) return (tm, tn);
        for (int g = 4; g >= 2; g--)
        {
            if (tn >= tm && n / (tn * g) >= 1024 && panelsN >= tn * g) return (tm, tn * g);
            if (tm > tn && m / (tm * g) >= 512 && panelsM >= tm * g) return (tm * g, tn);
        }
        return (tm, tn);
    }

    private sealed class PackedJob<TV, TR, TP>
        where TV : struct, IVec<TV>
        where TR : struct, IGemmRows
        where TP : struct, IGemmBPacker
    {
        public float* A, C;
        public TP Packer;
        public nint RsA, CsA;
        public int M, K, N, Tm, Tn;
        public bool Accumulate;
        public GemmBlocking Blk;

        public void Task(int t)
        {
            int mr = Blk.MR, nr = Blk.NR;
            int panelsM = (M + mr - 1) / mr, panelsN = (N + nr - 1) / nr;
            int ti = t / Tn, tj = t % Tn;
            int i0 = Math.Min(M, (int)((long)panelsM * ti / Tm) * mr), i1 = Math.Min(M, (int)((long)panelsM * (ti + 1) / Tm) * mr);
            int j0 = Math.Min(N, (int)((long)panelsN * tj / Tn) * nr), j1 = Math.Min(N, (int)((long)panelsN * (tj + 1) / Tn) * nr);
            if (i0 < i1 && j0 < j1) Tile(i0, i1, j0, j1);
        }

        private void Tile(int i0, int i1, int j0, int j1)
        {
            int mr = Blk.MR, nr = Blk.NR;
            int kBlocks = (K + Blk.KC - 1) / Blk.KC;
            int kcMax = (K + kBlocks - 1) / kBlocks;                    // balanced K blocks
            int mBlocks = (i1 - i0 + Blk.MC - 1) / Blk.MC;
            int mcMax = ((i1 - i0 + mBlocks - 1) / mBlocks + mr - 1) / mr * mr;
            int nBlocks = (j1 - j0 + Blk.NC - 1) / Blk.NC;
            int ncMax = ((j1 - j0 + nBlocks - 1) / nBlocks + nr - 1) / nr * nr;
            var buf = GemmBuffers.Current;
            float* ap = buf.A((nint)mcMax * kcMax);
            float* bp = buf.B((nint)ncMax * kcMax);
            float* scratch = buf.Scratch(Math.Max(ncMax, 8 * kcMax));
            float* edge = stackalloc float[TR.MR * 2 * TV.Count];
            nint ldc = N;

            for (int jc = j0; jc < j1; jc += ncMax)
            {
                int nc = Math.Min(ncMax, j1 - jc);
                for (int pc = 0; pc < K; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, K - pc);
                    bool add = Accumulate || pc > 0;
                    Packer.Pack(pc, kc, jc, nc, nr, bp, scratch);
                    for (int ic = i0; ic < i1; ic += mcMax)
                    {
                        int mc = Math.Min(mcMax, i1 - ic);
                        GemmPacking.PackA(A + ic * RsA + pc * CsA, RsA, CsA, mc, kc, mr, ap);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            float* bPanel = bp + (nint)jr * kc;
                            for (int ir = 0; ir < mc; ir += mr)
                            {
                                int rows = Math.Min(mr, mc - ir);
                                float* aPanel = ap + (nint)ir * kc;
                                float* ct = C + (ic + ir) * ldc + jc + jr;
                                if (rows == mr && cols == nr)
                                    GemmMicroKernel.Tile<TV, TR>(kc, aPanel, bPanel, ct, ldc, add);
                                else
                                {
                                    GemmMicroKernel.Tile<TV, TR>(kc, aPanel, bPanel, edge, nr, false);
                                    MergeEdge(edge, nr, ct, ldc, rows, cols, add);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static void MergeEdge(float* tile, int ldt, float* c, nint ldc, int rows, int cols, bool add)
    {
        for (int r = 0; r < rows; r++)
        {
            float* s = tile + r * ldt;
            float* d = c + r * ldc;
            if (add) for (int j = 0; j < cols; j++) d[j] += s[j];
            else for (int j = 0; j < cols; j++) d[j] = s[j];
        }
    }
}

/// <summary>Supplies blocks of B to the packed GEMM driver, already in the panel layout.</summary>
internal unsafe interface IGemmBPacker
{
    /// <summary>Packs B steps [pc, pc+kc) x columns [jc, jc+nc) into NR-column panels at
    /// <paramref name="dst"/> (panel q at q*nr*kc, element (p, c) at p*nr + c; columns past nc are 0).
    /// <paramref name="scratch"/> holds at least max(nc, 8*kc) floats.</summary>
    void Pack(int pc, int kc, int jc, int nc, int nr, float* dst, float* scratch);
}

/// <summary>B as a strided F32/F16/BF16 matrix: B(p,j) = b[p*rsB + j*csB].</summary>
internal readonly unsafe struct StridedBPacker<TB>(TB* b, nint rsB, nint csB) : IGemmBPacker
    where TB : unmanaged
{
    private readonly TB* _b = b;
    private readonly nint _rsB = rsB, _csB = csB;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Pack(int pc, int kc, int jc, int nc, int nr, float* dst, float* scratch) =>
        GemmPacking.PackB(_b + pc * _rsB + jc * _csB, _rsB, _csB, kc, nc, nr, dst, scratch);
}
