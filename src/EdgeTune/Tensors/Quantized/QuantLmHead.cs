using System.Buffers;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Tensors.Quantized;

/// <summary>
/// The LM head fused with cross-entropy over a frozen quantized head W [V, C] (a quantized tied embedding):
/// the same chunked computation as <see cref="CrossEntropy.LmHeadForward{TW}"/>, with each chunk's logits
/// h·W[chunk]ᵀ made by <see cref="QuantGemm.ABt"/> over a row-range view of W (no float copy of W exists) and
/// the input gradient dh += dlogits·W[chunk] by <see cref="QuantGemm.AB"/>. W is never trained: no dW.
/// </summary>
public static class QuantLmHead
{
    /// <summary>x: (N, C), weight: [V, C], targets: (N) → logSumExp: (N) (overwritten), rowLoss: (N) (overwritten;
    /// empty to skip). Returns the summed loss and count. inputGrad: (N, C) (overwritten; empty to skip) receives the input
    /// gradient of the summed loss made in the same pass, as <see cref="CrossEntropy.LmHeadForward{TW}"/> makes it, so the
    /// backward needs no second pass over the logits.</summary>
    public static CrossEntropyResult Forward(ReadOnlySpan<float> x, QuantizedMatrix weight, ReadOnlySpan<int> targets,
        Span<float> logSumExp, int rows, int chunk = CrossEntropy.DefaultChunk, Span<float> rowLoss = default, Span<float> inputGrad = default)
    {
        const string op = "QuantLmHead.Forward";
        ArgumentNullException.ThrowIfNull(weight);
        int channels = weight.Cols, vocab = weight.Rows;
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.LmHead(op, x.Length, vocab * channels, logSumExp.Length, rowLoss.Length, rows, channels, vocab, chunk);
        bool grad = !inputGrad.IsEmpty;
        if (grad) ShapeException.RequireLength(op, "inputGrad", inputGrad.Length, (long)rows * channels);
        var losses = rowLoss.IsEmpty ? new float[rows] : rowLoss;
        if (rows > 0)
        {
            int width = Math.Min(chunk, vocab);
            float[] buf = ArrayPool<float>.Shared.Rent(checked(rows * width));
            var state = new CrossEntropy.LmHeadState(rows);
            if (grad) inputGrad.Clear();
            try
            {
                for (int v0 = 0; v0 < vocab; v0 += width)
                {
                    int cv = Math.Min(width, vocab - v0);
                    var w = weight.RowRange(v0, cv);
                    QuantGemm.ABt(x.Slice(0, rows * channels), w, buf, rows);
                    if (!grad)
                    {
                        switch (Simd.Width)
                        {
                            case SimdWidth.V512: CrossEntropy.LmHeadFoldChunk<V512>(buf, targets, state, rows, v0, cv, op); break;
                            case SimdWidth.V256: CrossEntropy.LmHeadFoldChunk<V256>(buf, targets, state, rows, v0, cv, op); break;
                            default: CrossEntropy.LmHeadFoldChunk<V128>(buf, targets, state, rows, v0, cv, op); break;
                        }
                        continue;
                    }
                    switch (Simd.Width)
                    {
                        case SimdWidth.V512: CrossEntropy.LmHeadFoldChunkExp<V512>(buf, targets, state, inputGrad, rows, channels, v0, cv, op); break;
                        case SimdWidth.V256: CrossEntropy.LmHeadFoldChunkExp<V256>(buf, targets, state, inputGrad, rows, channels, v0, cv, op); break;
                        default: CrossEntropy.LmHeadFoldChunkExp<V128>(buf, targets, state, inputGrad, rows, channels, v0, cv, op); break;
                    }
                    QuantGemm.AB(buf.AsSpan(0, rows * cv), w, inputGrad, rows, accumulate: true);
                }
            }
            finally { ArrayPool<float>.Shared.Return(buf); }
            state.Finish(targets, logSumExp, losses, rows);
            if (grad)
            {
                state.NormalizeInputGradient(targets, inputGrad, rows, channels);
                var wt = new float[channels];
                for (int r = 0; r < rows; r++)
                {
                    if (targets[r] == CrossEntropy.IgnoreIndex) continue;
                    weight.DequantizeRows(targets[r], 1, wt);
                    var g = inputGrad.Slice(r * channels, channels);
                    System.Numerics.Tensors.TensorPrimitives.Subtract(g, wt, g);
                }
            }
        }
        return CrossEntropy.Total(losses, targets, rows);
    }

    /// <summary>Backward of <see cref="Forward"/>, recomputing each chunk's logits: dlogits = (softmax − onehot)·scale;
    /// dx: (N, C) += dlogits·W.</summary>
    public static void Backward(ReadOnlySpan<float> x, QuantizedMatrix weight, ReadOnlySpan<int> targets, ReadOnlySpan<float> logSumExp,
        Span<float> dx, int rows, float scale, int chunk = CrossEntropy.DefaultChunk)
    {
        const string op = "QuantLmHead.Backward";
        ArgumentNullException.ThrowIfNull(weight);
        int channels = weight.Cols, vocab = weight.Rows;
        CrossEntropyChecks.Targets(op, targets, rows, vocab);
        CrossEntropyChecks.LmHead(op, x.Length, vocab * channels, logSumExp.Length, 0, rows, channels, vocab, chunk);
        ShapeException.RequireLength(op, "dx", dx.Length, (long)rows * channels);
        if (rows == 0) return;
        int width = Math.Min(chunk, vocab);
        float[] buf = ArrayPool<float>.Shared.Rent(checked(rows * width));
        try
        {
            for (int v0 = 0; v0 < vocab; v0 += width)
            {
                int cv = Math.Min(width, vocab - v0);
                var w = weight.RowRange(v0, cv);
                QuantGemm.ABt(x.Slice(0, rows * channels), w, buf, rows);
                switch (Simd.Width)
                {
                    case SimdWidth.V512: CrossEntropy.LmHeadGradientChunk<V512>(buf, targets, logSumExp, rows, v0, cv, scale); break;
                    case SimdWidth.V256: CrossEntropy.LmHeadGradientChunk<V256>(buf, targets, logSumExp, rows, v0, cv, scale); break;
                    default: CrossEntropy.LmHeadGradientChunk<V128>(buf, targets, logSumExp, rows, v0, cv, scale); break;
                }
                QuantGemm.AB(buf.AsSpan(0, rows * cv), w, dx, rows, accumulate: true);
            }
        }
        finally { ArrayPool<float>.Shared.Return(buf); }
    }
}
