using EdgeTune.Tensors;

namespace EdgeTune.Autograd.Internal;

/// <summary>Argument checks shared by ops; every failure names the op, the tensor and the shapes.</summary>
internal static class OpChecks
{
    /// <summary>Throws unless <paramref name="v"/> is F32 or F64 (the dtypes ops compute in).</summary>
    public static void Float(string op, string role, Variable v)
    {
        if (v.DType is not (DType.F32 or DType.F64))
            throw new ShapeException($"{op}: {role} '{v.Name}' is {v.DType}{v.Value.ShapeString}; expected F32 or F64");
    }

    public static void SameDType(string op, Variable a, Variable b)
    {
        if (a.DType != b.DType)
            throw new ShapeException($"{op}: '{a.Name}' is {a.DType}{a.Value.ShapeString} but '{b.Name}' is {b.DType}{b.Value.ShapeString}; dtypes must match");
    }

    public static void SameShape(string op, Variable a, Variable b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ShapeException($"{op}: '{a.Name}' {a.Value.ShapeString} and '{b.Name}' {b.Value.ShapeString} must have the same shape");
    }

    public static void Rank(string op, string role, Variable v, int rank)
    {
        if (v.Value.Rank != rank)
            throw new ShapeException($"{op}: {role} '{v.Name}' {v.Value.ShapeString} must have rank {rank}");
    }

    /// <summary>Throws <see cref="NonFiniteException"/> naming the op and tensor when a loss is NaN/Inf.</summary>
    public static void FiniteLoss(string op, Variable loss, double value)
    {
        if (!double.IsFinite(value)) throw new NonFiniteException(op, loss.Name, value);
    }

    /// <summary>Writes the mean <paramref name="sum"/>/<paramref name="count"/> (0 when nothing was
    /// counted) into the scalar <paramref name="loss"/> in its dtype; throws
    /// <see cref="NonFiniteException"/> when it is NaN or infinite.</summary>
    public static void SetMeanLoss(string op, Variable loss, double sum, int count)
    {
        double mean = count == 0 ? 0 : sum / count;
        if (loss.DType == DType.F64) loss.Value.Span<double>()[0] = mean;
        else loss.Value.Span<float>()[0] = (float)mean;
        FiniteLoss(op, loss, mean);
    }

    /// <summary>The kernels refuse NaN/Inf logits with a plain <see cref="ArithmeticException"/>;
    /// the tape reports it as the non-finite loss it would have been.</summary>
    public static NonFiniteException NonFiniteLogits(string op, Variable input) => new(op, input.Name, double.NaN);

    /// <summary>Throws unless F32 or F64; returns true for F64.</summary>
    public static bool IsDouble(string op, DType dtype) => dtype switch
    {
        DType.F32 => false,
        DType.F64 => true,
        _ => throw new ShapeException($"{op}: no kernel for {dtype}; expected F32 or F64"),
    };

    /// <summary>Rows and columns of <paramref name="v"/> seen as [R, C] over its last dimension (rank ≥ 1).</summary>
    public static (int Rows, int Cols) Matrix(string op, string role, Variable v)
    {
        if (v.Value.Rank < 1)
            throw new ShapeException($"{op}: {role} '{v.Name}' {v.Value.ShapeString} must have at least one dimension");
        int cols = v.Shape[^1];
        long rows = 1;
        for (int i = 0; i < v.Shape.Length - 1; i++) rows *= v.Shape[i];
        return (checked((int)rows), cols);
    }

    /// <summary>Throws unless <paramref name="v"/> is a rank-1 [<paramref name="length"/>] vector of <paramref name="like"/>'s dtype.</summary>
    public static void Vector(string op, string role, Variable v, int length, Variable like)
    {
        SameDType(op, like, v);
        if (v.Value.Rank != 1 || v.Shape[0] != length)
            throw new ShapeException($"{op}: {role} '{v.Name}' {v.Value.ShapeString} must be [{length}] to match '{like.Name}' {like.Value.ShapeString}");
    }

    /// <summary>The checks of an op that projects hidden states x (…, C) through an LM head W [V, C] onto one target per
    /// row: x F32/F64, W of rank 2 matching C, N targets, W F64 with F64 x or F32/F16/BF16 with F32 x, and only a weight of
    /// x's dtype trainable. Returns N, C, V and whether the op computes in double.</summary>
    public static (int Rows, int Channels, int Vocab, bool F64) LmHead(string op, Variable x, Variable w, int targets)
    {
        Float(op, "x", x);
        Rank(op, "weight", w, 2);
        var (rows, channels) = Matrix(op, "x", x);
        int vocab = w.Shape[0];
        if (w.Shape[1] != channels)
            throw new ShapeException($"{op}: weight '{w.Name}' {w.Value.ShapeString} must be [V, {channels}] for x '{x.Name}' {x.Value.ShapeString}");
        if (targets != rows)
            throw new ShapeException($"{op}: {targets} targets for x '{x.Name}' {x.Value.ShapeString}; expected N = {rows}");
        bool f64 = IsDouble(op, x.DType);
        if (f64 ? w.DType != DType.F64 : w.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ShapeException($"{op}: weight '{w.Name}' is {w.DType}{w.Value.ShapeString} but x '{x.Name}' is {x.DType}; expected {(f64 ? "F64" : "F32, F16 or BF16")}");
        if (w.RequiresGrad && w.DType != x.DType)
            throw new ShapeException($"{op}: weight '{w.Name}' is {w.DType} and requires a gradient; only F32/F64 weights can be trained");
        return (rows, channels, vocab, f64);
    }

    /// <summary>A copy of integer ids (token ids or targets) held in an I32 tensor.</summary>
    public static int[] Ids(string op, string role, Tensor ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (ids.DType != DType.I32)
            throw new ShapeException($"{op}: {role} '{ids.Name}' is {ids.DType}{ids.ShapeString}; expected I32");
        return ids.ReadOnlySpan<int>().ToArray();
    }
}
