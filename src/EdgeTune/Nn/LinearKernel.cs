using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>
/// y[N, out] (+)= x[N, in] · W[out, in]ᵀ for a weight of any stored dtype (F32, F16, BF16), without
/// converting the weight: the GEMM widens it while packing; up to <see cref="Gemv.MaxRows"/> rows of x (decode)
/// go through <see cref="Gemv"/>, which streams the weight once.
/// </summary>
public static class LinearKernel
{
    public static void Forward(ReadOnlySpan<float> x, Tensor weight, Span<float> y, int rows, bool accumulate = false)
    {
        if (weight.Rank != 2) throw new ShapeException($"Linear: weight '{weight.Name}' must be 2-D [out, in], got {weight.ShapeString}");
        int outF = weight.Dim(0), inF = weight.Dim(1);
        if (rows <= Gemv.MaxRows)
        {
            // Decode-sized products stream the weight once (the GEMM would pack it for nothing).
            switch (weight.DType)
            {
                case DType.F32: Gemv.ABt(x, weight.ReadOnlySpan<float>(), y, rows, inF, outF, accumulate); return;
                case DType.F16: Gemv.ABt(x, weight.ReadOnlySpan<Half>(), y, rows, inF, outF, accumulate); return;
                case DType.BF16: Gemv.ABt(x, weight.ReadOnlySpan<ushort>(), y, rows, inF, outF, accumulate); return;
            }
        }
        switch (weight.DType)
        {
            case DType.F32: Gemm.ABt(x, weight.ReadOnlySpan<float>(), y, rows, inF, outF, accumulate); break;
            case DType.F16: Gemm.ABt(x, weight.ReadOnlySpan<Half>(), y, rows, inF, outF, accumulate); break;
            case DType.BF16: Gemm.ABt(x, weight.ReadOnlySpan<ushort>(), y, rows, inF, outF, accumulate); break;
            default: throw new ShapeException($"Linear: weight '{weight.Name}' has dtype {weight.DType}; F32, F16 or BF16 expected (dequantize block types first)");
        }
    }
}
