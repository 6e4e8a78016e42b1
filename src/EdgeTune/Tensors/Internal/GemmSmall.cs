namespace EdgeTune.Tensors.Internal;

/// <summary>
/// GEMM for a few rows of A (M at most <see cref="GemmDriver.SmallM"/>: decode steps, GEMV-like
/// shapes). Packing B for the 12-row kernel would cost as much as the product itself. With B stored
/// [N, K] each output is a dot product of two contiguous rows (F16/BF16 rows widened four at a
/// time); with B stored [K, N] blocks of KB x W are copied (widened) into per-thread scratch along
/// B's rows, then up to four rows of C at a time are accumulated over them in registers. Threads
/// split N in fixed chunks, so the result does not depend on which thread computes what.
/// </summary>
internal static unsafe class GemmSmall
{
    private const int KB = 256;          // K steps per widened block of B stored [K, N]
    private const int WPanels = 8;       // micro-panels (2 vectors each) per widened block

    public static void Run<TV, TB>(float* a, nint rsA, nint csA, TB* b, nint rsB, nint csB, float* c,
        int m, int k, int n, bool accumulate, int threads)
        where TV : struct, IVec<TV>
        where TB : unmanaged
    {
        var job = new Job<TV, TB>
        {
            A = a, RsA = rsA, CsA = csA, B = b, RsB = rsB, CsB = csB, C = c,
            M = m, K = k, N = n, Accumulate = accumulate,
        };
        int unit = csB == 1 ? 2 * TV.Count : 4;
        int units = (n + unit - 1) / unit;
        job.Unit = unit;
        job.Tasks = Math.Max(1, Math.Min(threads, units));
        if (job.Tasks == 1) job.Task(0);
        else WorkerPool.Shared.Run(job.Tasks, job.Task);
    }

    private sealed class Job<TV, TB>
        where TV : struct, IVec<TV>
        where TB : unmanaged
    {
        public float* A, C;
        public TB* B;
        public nint RsA, CsA, RsB, CsB;
        public int M, K, N, Unit, Tasks;
        public bool Accumulate;

        public void Task(int t)
        {
            int units = (N + Unit - 1) / Unit;
            int j0 = Math.Min(N, (int)((long)units * t / Tasks) * Unit);
            int j1 = Math.Min(N, (int)((long)units * (t + 1) / Tasks) * Unit);
            if (j0 >= j1) return;
            if (CsB == 1) RowsOfB(j0, j1);
            else DotsWithB(j0, j1);
        }

        // B stored [N, K] (ABt): C[i, j] = dot(A row i, B row j).
        private void DotsWithB(int j0, int j1)
        {
            float* scratch = typeof(TB) == typeof(float) ? null : GemmBuffers.Current.Scratch(4 * (nint)K);
            for (int j = j0; j < j1; j += 4)
            {
                int cnt = Math.Min(4, j1 - j);
                float* b0, b1, b2, b3;
                if (scratch == null)
                {
                    b0 = (float*)(B + j * CsB);
                    b1 = cnt > 1 ? b0 + CsB : b0; b2 = cnt > 2 ? b0 + 2 * CsB : b0; b3 = cnt > 3 ? b0 + 3 * CsB : b0;
                }
                else
                {
                    for (int q = 0; q < cnt; q++) GemmPacking.Widen(B + (j + q) * CsB, scratch + q * (nint)K, K);
                    b0 = scratch;
                    b1 = cnt > 1 ? b0 + K : b0; b2 = cnt > 2 ? b0 + 2 * K : b0; b3 = cnt > 3 ? b0 + 3 * K : b0;
                }
                for (int i = 0; i < M; i++)
                {
                    GemmMicroKernel.Dot4<TV>(K, A + i * RsA, b0, b1, b2, b3, out float s0, out float s1, out float s2, out float s3);
                    float* ci = C + (nint)i * N + j;
                    if (Accumulate)
                    {
                        ci[0] += s0;
                        if (cnt > 1) ci[1] += s1;
                        if (cnt > 2) ci[2] += s2;
                        if (cnt > 3) ci[3] += s3;
                    }
                    else
                    {
                        ci[0] = s0;
                        if (cnt > 1) ci[1] = s1;
                        if (cnt > 2) ci[2] = s2;
                        if (cnt > 3) ci[3] = s3;
                    }
                }
            }
        }

        // B stored [K, N] (AB, AtB): C[0..M, j..j+NR) accumulated over K in blocks of KB steps.
        private void RowsOfB(int j0, int j1)
        {
            int nr = 2 * TV.Count;
            int full = j0 + (j1 - j0) / nr * nr;
            int w = WPanels * nr;
            // Each KB x W block of B is first copied (widened) row by row into scratch: reading B
            // along its rows keeps the hardware prefetcher busy, where walking a 2-vector strip
            // down K touched a new page every row or two (measured 3.8 -> see bench for M=1).
            float* scratch = GemmBuffers.Current.Scratch((nint)KB * w);
            for (int jw = j0; jw < full; jw += w)
            {
                int width = Math.Min(w, full - jw);
                for (int pc = 0; pc < K; pc += KB)
                {
                    int kc = Math.Min(KB, K - pc);
                    bool add = Accumulate || pc > 0;
                    for (int p = 0; p < kc; p++) GemmPacking.Widen(B + (pc + p) * RsB + jw, scratch + (nint)p * width, width);
                    float* src = scratch;
                    nint ldb = width;
                    for (int jr = 0; jr < width; jr += nr)
                        for (int i = 0; i < M; i += 4)
                            GemmMicroKernel.Rows4<TV>(kc, A + i * RsA + pc * CsA, RsA, CsA, src + jr, ldb,
                                C + (nint)i * N + jw + jr, N, Math.Min(4, M - i), add);
                }
            }
            // Columns past the last full micro-panel: scalar, same K blocking.
            for (int j = full; j < j1; j++)
                for (int i = 0; i < M; i++)
                {
                    float* ci = C + (nint)i * N + j;
                    for (int pc = 0; pc < K; pc += KB)
                    {
                        int kc = Math.Min(KB, K - pc);
                        float s = 0;
                        for (int p = pc; p < pc + kc; p++)
                            s = MathF.FusedMultiplyAdd(A[i * RsA + p * CsA], Gemm.Widen(B[p * RsB + j]), s);
                        *ci = Accumulate || pc > 0 ? *ci + s : s;
                    }
                }
        }
    }
}
