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

    /// <summary>Throws unless F32 or F64; returns true for F64.</summary>
    public static bool IsDouble(string op, DType dtype) => dtype switch
    {
        DType.F32 => false,
        DType.F64 => true,
        _ => throw new ShapeException($"{op}: no kernel for {dtype}; expected F32 or F64"),
    };
}
