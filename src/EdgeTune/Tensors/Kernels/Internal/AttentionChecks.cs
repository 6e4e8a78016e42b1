namespace EdgeTune.Tensors;

/// <summary>Argument checks shared by the attention kernels.</summary>
internal static class AttentionChecks
{
    public static void Decode(string op, int qLen, int kLen, int vLen, int outLen, int lseLen,
        int batch, int newTokens, int start, int capacity, int headsQ, int headsKv, int headDim, int window)
    {
        ShapeException.RequireNonNegative(op, "B", batch);
        ShapeException.RequireNonNegative(op, "T", newTokens);
        ShapeException.RequireNonNegative(op, "start", start);
        ShapeException.RequireNonNegative(op, "window", window);
        if (headsQ <= 0 || headsKv <= 0 || headDim <= 0)
            throw new ShapeException($"{op}: Hq = {headsQ}, Hkv = {headsKv} and D = {headDim} must be positive");
        if (headsQ % headsKv != 0)
            throw new ShapeException($"{op}: Hq = {headsQ} is not a multiple of Hkv = {headsKv}");
        if ((long)start + newTokens > capacity)
            throw new ShapeException($"{op}: positions [{start}, {(long)start + newTokens}) do not fit a cache of capacity {capacity}");
        long qNeed = (long)batch * newTokens * headsQ * headDim;
        long kvNeed = (long)batch * capacity * headsKv * headDim;
        ShapeException.RequireLength(op, "q", qLen, qNeed);
        ShapeException.RequireLength(op, "k", kLen, kvNeed);
        ShapeException.RequireLength(op, "v", vLen, kvNeed);
        ShapeException.RequireLength(op, "output", outLen, qNeed);
        if (lseLen != 0) ShapeException.RequireLength(op, "logSumExp", lseLen, (long)batch * headsQ * newTokens);
    }

    public static void Gradients(string op, int dqLen, int dkLen, int dvLen, int batch, int time, int headsQ, int headsKv, int headDim)
    {
        ShapeException.RequireLength(op, "dq", dqLen, (long)batch * time * headsQ * headDim);
        ShapeException.RequireLength(op, "dk", dkLen, (long)batch * time * headsKv * headDim);
        ShapeException.RequireLength(op, "dv", dvLen, (long)batch * time * headsKv * headDim);
    }
}
