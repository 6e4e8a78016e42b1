using System.Runtime.InteropServices;

namespace EdgeTune.Tensors.Internal;

/// <summary>
/// Per-thread pack buffers for GEMM: 64-byte aligned native memory, grown on demand and reused by
/// every later call on the same thread (the pool's threads live for the process). The memory is
/// released when the thread ends and its buffers are collected.
/// </summary>
internal sealed unsafe class GemmBuffers
{
    [ThreadStatic] private static GemmBuffers? t_current;

    private float* _a, _b, _scratch;
    private nint _aCap, _bCap, _scratchCap;

    public static GemmBuffers Current => t_current ??= new GemmBuffers();

    public float* A(nint floats) => Ensure(ref _a, ref _aCap, floats);
    public float* B(nint floats) => Ensure(ref _b, ref _bCap, floats);
    public float* Scratch(nint floats) => Ensure(ref _scratch, ref _scratchCap, floats);

    private static float* Ensure(ref float* p, ref nint cap, nint floats)
    {
        if (floats <= cap) return p;
        if (p != null) NativeMemory.AlignedFree(p);
        nint grown = Math.Max(floats, cap + cap / 2);
        p = (float*)NativeMemory.AlignedAlloc((nuint)grown * sizeof(float), 64);
        cap = grown;
        return p;
    }

    ~GemmBuffers()
    {
        if (_a != null) NativeMemory.AlignedFree(_a);
        if (_b != null) NativeMemory.AlignedFree(_b);
        if (_scratch != null) NativeMemory.AlignedFree(_scratch);
    }
}
