using System.Buffers;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors;

public static unsafe partial class CrossEntropy
{
    /// <summary>
    /// The LM head fused with cross-entropy. x: (N,C) weight: (V,C) (F32 float, F16 Half or BF16
    /// ushort, as <see cref="Gemm"/> reads them) targets: (N) → logSumExp: (N) (overwritten),
    /// rowLoss: (N) (overwritten; empty to skip). The logits are made <paramref name="chunk"/>
    /// vocabulary rows at a time (N × chunk floats of scratch) and folded into a running max and
    /// sum of exponentials per row, so (N,V) logits never exist. Returns the summed loss and count.
    /// inputGrad: (N,C) (overwritten; empty to skip) receives the input gradient of the SUMMED loss,
    /// Σ_v softmax(l)_v·W[v] − W[target] per counted row (0 for an ignored row), made in the same pass:
    /// each chunk's exponentials exp(l − running max) are multiplied into it at once and the rows are
    /// rescaled when their max grows (as online softmax does), so a frozen head's backward is
    /// dx += scale·inputGrad with no second pass over the logits. Costs one more GEMM per chunk.
    /// </summary>
    public static CrossEntropyResult LmHeadForward<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets,
        Span<float> logSumExp, int rows, int channels, int vocab, int chunk = DefaultChunk, Span<float> rowLoss = default,
        Span<float> inputGrad = default)
        where TW : unmanaged
    {
        const string op = "CrossEntropy.LmHeadForward";
        CheckWeightType<TW>(op);
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.LmHead(op, x.Length, weight.Length, logSumExp.Length, rowLoss.Length, rows, channels, vocab, chunk);
        if (!inputGrad.IsEmpty) ShapeException.RequireLength(op, "inputGrad", inputGrad.Length, (long)rows * channels);
        var losses = rowLoss.IsEmpty ? new float[rows] : rowLoss;
        switch (Simd.Width)
        {
            case SimdWidth.V512: LmHeadForwardCore<V512, TW>(x, weight, targets, logSumExp, losses, rows, channels, vocab, chunk, inputGrad); break;
            case SimdWidth.V256: LmHeadForwardCore<V256, TW>(x, weight, targets, logSumExp, losses, rows, channels, vocab, chunk, inputGrad); break;
            // V128 is emulated where not accelerated: the chunked path is kept so memory stays bounded.
            default: LmHeadForwardCore<V128, TW>(x, weight, targets, logSumExp, losses, rows, channels, vocab, chunk, inputGrad); break;
        }
        return Total(losses, targets, rows);
    }

    /// <summary>
    /// Backward of <see cref="LmHeadForward{TW}"/>, recomputing each chunk's logits:
    /// dlogits = (softmax − onehot)·scale; dx: (N,C) += dlogits·W; dWeight: (V,C) += dlogitsᵀ·x
    /// unless empty (a frozen head). Both gradients accumulate.
    /// </summary>
    public static void LmHeadBackward<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp,
        Span<float> dx, Span<float> dWeight, int rows, int channels, int vocab, float scale, int chunk = DefaultChunk)
        where TW : unmanaged
    {
        const string op = "CrossEntropy.LmHeadBackward";
        CheckWeightType<TW>(op);
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.LmHead(op, x.Length, weight.Length, logSumExp.Length, 0, rows, channels, vocab, chunk);
        ShapeException.RequireLength(op, "dx", dx.Length, (long)rows * channels);
        if (!dWeight.IsEmpty) ShapeException.RequireLength(op, "dWeight", dWeight.Length, (long)vocab * channels);
        switch (Simd.Width)
        {
            case SimdWidth.V512: LmHeadBackwardCore<V512, TW>(x, weight, targets, logSumExp, dx, dWeight, rows, channels, vocab, scale, chunk); break;
            case SimdWidth.V256: LmHeadBackwardCore<V256, TW>(x, weight, targets, logSumExp, dx, dWeight, rows, channels, vocab, scale, chunk); break;
            default: LmHeadBackwardCore<V128, TW>(x, weight, targets, logSumExp, dx, dWeight, rows, channels, vocab, scale, chunk); break;
        }
    }

    internal static void LmHeadForwardCore<TV, TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets,
        Span<float> logSumExp, Span<float> rowLoss, int rows, int channels, int vocab, int chunk, Span<float> inputGrad = default)
        where TV : struct, IVec<TV> where TW : unmanaged
    {
        if (rows == 0) return;
        int width = Math.Min(chunk, vocab);
        float[] buf = ArrayPool<float>.Shared.Rent(checked(rows * width));
        var state = new LmHeadState(rows);
        bool grad = !inputGrad.IsEmpty;
        if (grad) inputGrad.Clear();
        try
        {
            for (int v0 = 0; v0 < vocab; v0 += width)
            {
                int cv = Math.Min(width, vocab - v0);
                var w = weight.Slice(v0 * channels, cv * channels);
                Gemm.ABt(x, w, buf, rows, channels, cv);
                if (!grad)
                {
                    LmHeadFoldChunk<TV>(buf, targets, state, rows, v0, cv, "CrossEntropy.LmHeadForward");
                    continue;
                }
                LmHeadFoldChunkExp<TV>(buf, targets, state, inputGrad, rows, channels, v0, cv, "CrossEntropy.LmHeadForward");
                Gemm.AB(buf, w, inputGrad, rows, cv, channels, accumulate: true);
            }
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
        state.Finish(targets, logSumExp, rowLoss, rows);
        if (!grad) return;
        state.NormalizeInputGradient(targets, inputGrad, rows, channels);
        var wt = new float[channels];
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] == IgnoreIndex) continue;
            WidenRow(weight.Slice(targets[r] * channels, channels), wt);
            var g = inputGrad.Slice(r * channels, channels);
            System.Numerics.Tensors.TensorPrimitives.Subtract(g, wt, g);
        }
    }

    /// <summary>dst[0..C) = the weight row src widened to F32 (F32, F16 or BF16 elements).</summary>
    private static void WidenRow<TW>(ReadOnlySpan<TW> src, Span<float> dst) where TW : unmanaged
    {
        if (typeof(TW) == typeof(float)) System.Runtime.InteropServices.MemoryMarshal.Cast<TW, float>(src).CopyTo(dst);
        else if (typeof(TW) == typeof(Half)) System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<TW, Half>(src), dst);
        else BFloat16.ToSingle(System.Runtime.InteropServices.MemoryMarshal.Cast<TW, ushort>(src), dst);
    }

    internal static void LmHeadBackwardCore<TV, TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp,
        Span<float> dx, Span<float> dWeight, int rows, int channels, int vocab, float scale, int chunk)
        where TV : struct, IVec<TV> where TW : unmanaged
    {
        if (rows == 0) return;
        int width = Math.Min(chunk, vocab);
        float[] buf = ArrayPool<float>.Shared.Rent(checked(rows * width));
        try
        {
            for (int v0 = 0; v0 < vocab; v0 += width)
            {
                int cv = Math.Min(width, vocab - v0);
                var w = weight.Slice(v0 * channels, cv * channels);
                Gemm.ABt(x, w, buf, rows, channels, cv);
                LmHeadGradientChunk<TV>(buf, targets, logSumExp, rows, v0, cv, scale);
                Gemm.AB(buf, w, dx, rows, cv, channels, accumulate: true);
                if (!dWeight.IsEmpty)
                    Gemm.AtB<float>(buf, x, dWeight.Slice(v0 * channels, cv * channels), cv, rows, channels, accumulate: true);
            }
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
    }

    /// <summary>Running per-row max, sum of exponentials and target logit of the chunked LM-head forward.</summary>
    internal sealed class LmHeadState
    {
        public readonly float[] RunMax, RunSum, Target;

        public LmHeadState(int rows)
        {
            RunMax = new float[rows];
            RunSum = new float[rows];
            Target = new float[rows];
            Array.Fill(RunMax, float.NegativeInfinity);
        }

        /// <summary>Divides each counted row of the accumulated Σ_v exp(l_v − runMax)·W[v] in <paramref name="inputGrad"/>
        /// by the row's sum of exponentials (softmax·W); the caller subtracts the target's weight row. Ignored rows
        /// stay zero. Call after every chunk was folded.</summary>
        public void NormalizeInputGradient(ReadOnlySpan<int> targets, Span<float> inputGrad, int rows, int channels)
        {
            for (int r = 0; r < rows; r++)
            {
                if (targets[r] == IgnoreIndex) continue;
                var g = inputGrad.Slice(r * channels, channels);
                System.Numerics.Tensors.TensorPrimitives.Multiply(g, 1f / RunSum[r], g);
            }
        }

        /// <summary>logSumExp and rowLoss [N] from the folded chunks.</summary>
        public void Finish(ReadOnlySpan<int> targets, Span<float> logSumExp, Span<float> rowLoss, int rows)
        {
            for (int r = 0; r < rows; r++)
            {
                bool counted = targets[r] != IgnoreIndex;
                logSumExp[r] = counted ? RunMax[r] + MathF.Log(RunSum[r]) : 0f;
                rowLoss[r] = counted ? logSumExp[r] - Target[r] : 0f;
            }
        }
    }

    /// <summary>Folds one chunk of logits buf (N, cv) for vocabulary rows [v0, v0+cv) into <paramref name="state"/>.</summary>
    /// <exception cref="ArithmeticException">A row holds NaN or Inf.</exception>
    internal static void LmHeadFoldChunk<TV>(float[] buf, ReadOnlySpan<int> targets, LmHeadState state, int rows, int v0, int cv, string op)
        where TV : struct, IVec<TV>
    {
        float[] runMax = state.RunMax, runSum = state.RunSum, target = state.Target;
        fixed (float* pb = buf)
        fixed (int* pt = targets)
        {
            float* b0 = pb;
            int* t0 = pt;
            int bad = CrossEntropyRows.ForRows(rows, r =>
            {
                int t = t0[r];
                if (t == IgnoreIndex) return true;
                float* row = b0 + (long)r * cv;
                if (!CrossEntropyRows.Fold<TV>(row, cv, ref runMax[r], ref runSum[r])) return false;
                if (t >= v0 && t < v0 + cv) target[r] = row[t - v0];
                return true;
            });
            if (bad >= 0)
                throw new ArithmeticException($"{op}: the logits of row {bad} (vocabulary rows [{v0}, {v0 + cv})) hold NaN or Inf; check x and the weight");
        }
    }

    /// <summary>
    /// Folds one chunk of logits buf (N, cv) into <paramref name="state"/> like <see cref="LmHeadFoldChunk{TV}"/> and
    /// leaves in buf exp(l − m), m the row's running max after this chunk (ignored rows zero), scaling the row's
    /// accumulated input gradient inputGrad (N, C) by exp(m_before − m) so every chunk's terms share one shift.
    /// The caller then adds buf·W[chunk] to inputGrad.
    /// </summary>
    /// <exception cref="ArithmeticException">A row holds NaN or Inf.</exception>
    internal static void LmHeadFoldChunkExp<TV>(float[] buf, ReadOnlySpan<int> targets, LmHeadState state, Span<float> inputGrad,
        int rows, int channels, int v0, int cv, string op)
        where TV : struct, IVec<TV>
    {
        float[] runMax = state.RunMax, runSum = state.RunSum, target = state.Target;
        fixed (float* pb = buf, pg = inputGrad)
        fixed (int* pt = targets)
        {
            float* b0 = pb, g0 = pg;
            int* t0 = pt;
            int bad = CrossEntropyRows.ForRows(rows, r =>
            {
                int t = t0[r];
                float* row = b0 + (long)r * cv;
                if (t == IgnoreIndex) { new Span<float>(row, cv).Clear(); return true; }
                float m = BlockMath.MaxChecked<TV>(row, cv, out bool nonFinite);
                if (nonFinite) return false;
                if (t >= v0 && t < v0 + cv) target[r] = row[t - v0];
                float mNew = MathF.Max(runMax[r], m), alpha = MathF.Exp(runMax[r] - mNew);
                runSum[r] = runSum[r] * alpha + BlockMath.ExpShiftSum<TV>(row, cv, mNew);
                runMax[r] = mNew;
                if (alpha != 1f) BlockMath.Scale<TV>(g0 + (long)r * channels, channels, alpha);
                return true;
            });
            if (bad >= 0)
                throw new ArithmeticException($"{op}: the logits of row {bad} (vocabulary rows [{v0}, {v0 + cv})) hold NaN or Inf; check x and the weight");
        }
    }

    /// <summary>Turns one chunk of logits buf (N, cv) into dlogits = (softmax − onehot)·scale in place (ignored rows zero).</summary>
    internal static void LmHeadGradientChunk<TV>(float[] buf, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp, int rows, int v0, int cv, float scale)
        where TV : struct, IVec<TV>
    {
        fixed (float* pb = buf, plse = logSumExp)
        fixed (int* pt = targets)
        {
            float* b0 = pb, lse0 = plse;
            int* t0 = pt;
            CrossEntropyRows.ForRows(rows, r =>
            {
                int t = t0[r];
                float* row = b0 + (long)r * cv;
                if (t == IgnoreIndex) new Span<float>(row, cv).Clear();
                else CrossEntropyRows.Gradient<TV>(row, row, cv, lse0[r], scale, t - v0, accumulate: false);
                return true;
            });
        }
    }

    private static void CheckWeightType<TW>(string op) where TW : unmanaged
    {
        if (typeof(TW) != typeof(float) && typeof(TW) != typeof(Half) && typeof(TW) != typeof(ushort))
            throw new ShapeException($"{op}: weight elements of type {typeof(TW).Name} are not supported (F32 float, F16 Half, BF16 ushort)");
    }
}
