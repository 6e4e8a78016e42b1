using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Compression.Quantization.Qat;

/// <summary>What a <see cref="FakeQuantOp"/> rounds.</summary>
public enum FakeQuantTarget
{
    /// <summary>A weight [out, in], row by row in a <see cref="QuantFormat"/>.</summary>
    Weight,
    /// <summary>Activations (…, C), per row (token) in symmetric int8.</summary>
    Activation,
}

/// <summary>
/// y = dequant(quant(x)) (<see cref="FakeQuant"/>), with the straight-through estimator in backward:
/// dx += dy, unchanged (the identity STE; no clipping mask, since every format here scales a block by its
/// own absolute maximum, so no element lies outside the block's range except Q4_0's largest value of the
/// sign opposite to the block maximum, clamped by at most one step).
/// x: weight (out, in) or activations (…, C); y: same shape. y is F32 for an F32, F16 or BF16 x and F64
/// for F64 (gradient checks; the rounding itself always runs in float).
/// </summary>
public sealed class FakeQuantOp : TapeOp
{
    private readonly Variable _x;
    private Variable _y = null!;

    public FakeQuantOp(Variable x, FakeQuantTarget target, QuantFormat format = QuantFormat.Int8) : base("FakeQuant", x)
    {
        _x = x;
        Target = target;
        Format = target == FakeQuantTarget.Activation ? QuantFormat.Int8 : format;
    }

    public FakeQuantTarget Target { get; }
    public QuantFormat Format { get; }

    protected internal override void Forward(Tape tape)
    {
        if (_x.DType is not (DType.F32 or DType.F64 or DType.F16 or DType.BF16))
            throw new ShapeException($"{Name}: '{_x.Name}' is {_x.DType}{_x.Value.ShapeString}; expected F32, F64, F16 or BF16");
        if (_x.Value.Rank < (Target == FakeQuantTarget.Weight ? 2 : 1) || Target == FakeQuantTarget.Weight && _x.Value.Rank != 2)
            throw new ShapeException($"{Name}: {(Target == FakeQuantTarget.Weight ? "weight" : "activations")} '{_x.Name}' {_x.Value.ShapeString} must be {(Target == FakeQuantTarget.Weight ? "2-D [out, in]" : "at least 1-D")}");
        int cols = _x.Shape[^1];
        int rows = checked((int)(_x.ElementCount / Math.Max(cols, 1)));
        if (Target == FakeQuantTarget.Weight && !FakeQuant.Supports(Format, cols))
            throw new ShapeException($"{Name}: weight '{_x.Name}' {_x.Value.ShapeString} has rows of {cols}; {Format.Info().Name} needs a multiple of {Format.Info().BlockSize}");
        bool f64 = _x.DType == DType.F64;
        _y = NewOutput(tape, f64 ? DType.F64 : DType.F32, _x.Shape, Target == FakeQuantTarget.Weight ? "fq_weight" : "fq_act");
        if (rows == 0 || cols == 0) return;
        if (f64)
        {
            var src = _x.Value.ReadOnlySpan<double>();
            var dst = _y.Value.Span<double>();
            if (Target == FakeQuantTarget.Weight) FakeQuant.Weights(Format, src, dst, rows, cols);
            else FakeQuant.Activations(src, dst, rows, cols);
            return;
        }
        var y = _y.Value.Span<float>();
        if (_x.DType == DType.F32) _x.Value.ReadOnlySpan<float>().CopyTo(y);
        else
        {
            using var wide = _x.Value.To(DType.F32);
            wide.ReadOnlySpan<float>().CopyTo(y);
        }
        if (Target == FakeQuantTarget.Weight) FakeQuant.Weights(Format, y, y, rows, cols);
        else FakeQuant.Activations<float>(y, y, rows, cols);
    }

    protected internal override void Backward()
    {
        if (GradOf(_x) is not { } dx) return;
        Tensor dy = _y.Grad!;
        // straight-through: dx += dy
        if (dx.DType == DType.F64) TensorPrimitives.Add(dx.Span<double>(), dy.ReadOnlySpan<double>(), dx.Span<double>());
        else TensorPrimitives.Add(dx.Span<float>(), dy.ReadOnlySpan<float>(), dx.Span<float>());
    }
}

/// <summary>Tape extensions of the fake-quantization ops.</summary>
public static class FakeQuantOps
{
    /// <summary>dequant(quant(w)) row by row in <paramref name="format"/>; gradient passes straight through. w: (out, in).</summary>
    public static Variable FakeQuantize(this Tape tape, Variable w, QuantFormat format) =>
        tape.Apply(new FakeQuantOp(w, FakeQuantTarget.Weight, format));

    /// <summary>Per-token symmetric int8 round trip of activations (…, C); gradient passes straight through.</summary>
    public static Variable FakeQuantizeActivations(this Tape tape, Variable x) =>
        tape.Apply(new FakeQuantOp(x, FakeQuantTarget.Activation));
}
