using System.Runtime.InteropServices;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd.Internal;

/// <summary>Small whole-tensor helpers the tape and optimizers share.</summary>
internal static class TensorMath
{
    /// <summary>Sets every byte of <paramref name="t"/> to zero.</summary>
    public static unsafe void Clear(Tensor t)
    {
        if (t.ByteLength > 0) NativeMemory.Clear(t.Pointer, (nuint)t.ByteLength);
    }

    /// <summary>Copies <paramref name="src"/>'s bytes into <paramref name="dst"/> (same dtype and element count).</summary>
    public static unsafe void CopyBytes(Tensor src, Tensor dst)
    {
        if (src.ByteLength != dst.ByteLength)
            throw new ShapeException($"copy: '{src.Name}' {src.DType}{src.ShapeString} into '{dst.Name}' {dst.DType}{dst.ShapeString}: sizes differ");
        if (src.ByteLength > 0) Buffer.MemoryCopy(src.Pointer, dst.Pointer, dst.ByteLength, src.ByteLength);
    }
}
