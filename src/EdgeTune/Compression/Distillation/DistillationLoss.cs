using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Buffers;
using System.Numerics.Tensors;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// The student's LM head fused with the distillation loss (<see cref="DistillationSettings"/>), in
/// float. x: (N,C) student hidden states, weight: (V,C) (F32 float, F16 Half or BF16 ushort, as
/// <see cref="Gemm"/> reads them), targets: (N), teacher: <see cref="TeacherTargets"/> for the N rows.
/// The student logits are made a block of rows at a time (at most <c>rowChunkElements</c>
/// floats, at least one row), so the (N,V) student logits never exist as a whole; backward recomputes
/// each block. The definition is <see cref="DistillationLossReference"/>.
/// </summary>
/// <remarks>
/// Row work (log-sum-exp, softmax, KL) uses <see cref="TensorPrimitives"/>, which vectorises it on every
/// platform; the matrix products use <see cref="Gemm"/>. Rows are processed in order and the loss is summed
/// in double in row order, so results are bit-identical for any thread count. NaN or Inf logits (student or
/// teacher) raise an <see cref="ArithmeticException"/> naming the row.
/// </remarks>
public static class DistillationLoss
{
    /// <summary>Default block of student logits: 256K floats (1 MiB).</summary>
    public const int DefaultRowChunkElements = 1 << 18;

    /// <summary>Returns (Σ loss over counted rows, rows counted); rowLoss: (N) overwritten unless empty.</summary>
    public static CrossEntropyResult LmHeadForward<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, int rows, int channels, int vocab, int rowChunkElements = DefaultRowChunkElements, Span<float> rowLoss = default)
        where TW : unmanaged
    {
        const string op = "DistillationLoss.LmHeadForward";
        CheckArgs<TW>(op, x.Length, weight.Length, targets, teacher, settings, rows, channels, vocab, rowChunkElements);
        if (!rowLoss.IsEmpty) ShapeException.RequireLength(op, "rowLoss", rowLoss.Length, rows);
        double sum = 0;
        int count = 0;
        if (rows == 0) return new CrossEntropyResult(0, 0);
        int per = RowsPerBlock(rows, vocab, rowChunkElements);
        float[] buf = ArrayPool<float>.Shared.Rent(checked(per * vocab));
        using var scratch = new RowScratch(vocab);
        try
        {
            for (int r0 = 0; r0 < rows; r0 += per)
            {
                int n = Math.Min(per, rows - r0);
                var block = buf.AsSpan(0, n * vocab);
                Gemm.ABt(x.Slice(r0 * channels, n * channels), weight, block, n, channels, vocab);
                for (int i = 0; i < n; i++)
                {
                    int r = r0 + i;
                    float loss = 0f;
                    if (targets[r] != CrossEntropy.IgnoreIndex)
                    {
                        loss = Row(op, r, block.Slice(i * vocab, vocab), targets[r], teacher, settings, scratch, default, 0f);
                        sum += loss;
                        count++;
                    }
                    if (!rowLoss.IsEmpty) rowLoss[r] = loss;
                }
            }
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
        return new CrossEntropyResult(sum, count);
    }

    /// <summary>dx: (N,C) += dlogits·W; dWeight: (V,C) += dlogitsᵀ·x unless empty (a frozen head), with
    /// dlogits = ∂(Σ loss)/∂logits · scale recomputed block by block. Both gradients accumulate.</summary>
    public static void LmHeadBackward<TW>(ReadOnlySpan<float> x, ReadOnlySpan<TW> weight, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, Span<float> dx, Span<float> dWeight, int rows, int channels, int vocab, float scale,
        int rowChunkElements = DefaultRowChunkElements) where TW : unmanaged
    {
        const string op = "DistillationLoss.LmHeadBackward";
        CheckArgs<TW>(op, x.Length, weight.Length, targets, teacher, settings, rows, channels, vocab, rowChunkElements);
        ShapeException.RequireLength(op, "dx", dx.Length, (long)rows * channels);
        if (!dWeight.IsEmpty) ShapeException.RequireLength(op, "dWeight", dWeight.Length, (long)vocab * channels);
        if (rows == 0) return;
        int per = RowsPerBlock(rows, vocab, rowChunkElements);
        float[] buf = ArrayPool<float>.Shared.Rent(checked(per * vocab));
        float[] grad = ArrayPool<float>.Shared.Rent(checked(per * vocab));
        using var scratch = new RowScratch(vocab);
        try
        {
            for (int r0 = 0; r0 < rows; r0 += per)
            {
                int n = Math.Min(per, rows - r0);
                var block = buf.AsSpan(0, n * vocab);
                var g = grad.AsSpan(0, n * vocab);
                g.Clear();
                var xb = x.Slice(r0 * channels, n * channels);
                Gemm.ABt(xb, weight, block, n, channels, vocab);
                for (int i = 0; i < n; i++)
                {
                    int r = r0 + i;
                    if (targets[r] == CrossEntropy.IgnoreIndex) continue;
                    Row(op, r, block.Slice(i * vocab, vocab), targets[r], teacher, settings, scratch, g.Slice(i * vocab, vocab), scale);
                }
                Gemm.AB(g, weight, dx.Slice(r0 * channels, n * channels), n, vocab, channels, accumulate: true);
                if (!dWeight.IsEmpty) Gemm.AtB<float>(g, xb, dWeight, vocab, n, channels, accumulate: true);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buf);
            ArrayPool<float>.Shared.Return(grad);
        }
    }

    private static int RowsPerBlock(int rows, int vocab, int rowChunkElements) => Math.Clamp(rowChunkElements / vocab, 1, rows);

    /// <summary>One counted row: its loss; when <paramref name="dz"/> is not empty, dz = scale·∂loss/∂z (overwritten).</summary>
    private static float Row(string op, int r, Span<float> z, int target, TeacherTargets teacher, DistillationSettings s, RowScratch w, Span<float> dz, float scale)
    {
        int m = teacher.K, vocab = z.Length;
        float tau = (float)s.Temperature, alpha = (float)s.Alpha, invTau = 1f / tau;
        var sc = w.A.AsSpan(0, m);
        var ac = w.B.AsSpan(0, m);
        var tv = teacher.Values.AsSpan(r * m, m);
        if (teacher.Ids is { } allIds)
        {
            var ids = allIds.AsSpan(r * m, m);
            for (int j = 0; j < m; j++) sc[j] = z[ids[j]] * invTau;
        }
        else TensorPrimitives.Multiply(z, invTau, sc);
        TensorPrimitives.Multiply(tv, invTau, ac);
        float lse1 = LogSumExp(op, r, "student", z, w.C);
        float lseS = LogSumExp(op, r, "student", sc, w.C);
        float lseT = LogSumExp(op, r, "teacher", ac, w.C);
        TensorPrimitives.Subtract(sc, lseS, sc); // log p_S
        TensorPrimitives.Subtract(ac, lseT, ac); // log p_T
        var diff = w.C.AsSpan(0, m);
        var p = w.D.AsSpan(0, m);
        float kl;
        if (s.Direction == KlDirection.Forward)
        {
            TensorPrimitives.Subtract(ac, sc, diff);
            TensorPrimitives.Exp(ac, p);
        }
        else
        {
            TensorPrimitives.Subtract(sc, ac, diff);
            TensorPrimitives.Exp(sc, p);
        }
        kl = TensorPrimitives.Dot(p, diff);
        float loss = alpha * tau * tau * kl + (1f - alpha) * (lse1 - z[target]);
        if (dz.IsEmpty) return loss;

        // CE part: scale·(1 − α)·(softmax(z) − onehot)
        TensorPrimitives.Subtract(z, lse1, dz);
        TensorPrimitives.Exp(dz, dz);
        TensorPrimitives.Multiply(dz, scale * (1f - alpha), dz);
        dz[target] -= scale * (1f - alpha);
        // KL part: scale·α·τ·∂KL/∂s on the candidates
        var g = w.C.AsSpan(0, m);
        if (s.Direction == KlDirection.Forward)
        {
            TensorPrimitives.Exp(sc, g);          // p_S
            TensorPrimitives.Subtract(g, p, g);   // p_S − p_T
        }
        else
        {
            TensorPrimitives.Subtract(diff, kl, g); // log p_S − log p_T − KL
            TensorPrimitives.Multiply(g, p, g);     // · p_S
        }
        float k = scale * alpha * tau;
        if (teacher.Ids is { } allIds2)
        {
            var ids = allIds2.AsSpan(r * m, m);
            for (int j = 0; j < m; j++) dz[ids[j]] += k * g[j];
        }
        else TensorPrimitives.MultiplyAdd(g, k, dz, dz);
        return loss;
    }

    private static float LogSumExp(string op, int r, string who, ReadOnlySpan<float> v, float[] tmp)
    {
        float max = TensorPrimitives.Max(v);
        if (!float.IsFinite(max) || !float.IsFinite(TensorPrimitives.Min(v)))
            throw new ArithmeticException($"{op}: the {who} logits of row {r} hold NaN or Inf");
        var t = tmp.AsSpan(0, v.Length);
        TensorPrimitives.Subtract(v, max, t);
        TensorPrimitives.Exp(t, t);
        return max + MathF.Log(TensorPrimitives.Sum(t));
    }

    private static void CheckArgs<TW>(string op, int xLength, int weightLength, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, int rows, int channels, int vocab, int rowChunkElements) where TW : unmanaged
    {
        if (typeof(TW) != typeof(float) && typeof(TW) != typeof(Half) && typeof(TW) != typeof(ushort))
            throw new ShapeException($"{op}: weight elements of type {typeof(TW).Name} are not supported (F32 float, F16 Half, BF16 ushort)");
        if (rowChunkElements < 1) throw new ArgumentOutOfRangeException(nameof(rowChunkElements), rowChunkElements, $"{op}: the row chunk must be >= 1 element");
        DistillationLossReference.CheckHead(op, xLength, weightLength, rows, channels, vocab);
        DistillationLossReference.Check(op, -1, targets, teacher, settings, rows, vocab);
    }

    /// <summary>Per-row work buffers of V floats (pooled).</summary>
    private sealed class RowScratch(int vocab) : IDisposable
    {
        public readonly float[] A = ArrayPool<float>.Shared.Rent(vocab), B = ArrayPool<float>.Shared.Rent(vocab),
            C = ArrayPool<float>.Shared.Rent(vocab), D = ArrayPool<float>.Shared.Rent(vocab);
        public void Dispose()
        {
            ArrayPool<float>.Shared.Return(A);
            ArrayPool<float>.Shared.Return(B);
            ArrayPool<float>.Shared.Return(C);
            ArrayPool<float>.Shared.Return(D);
        }
    }
}
