using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeTune.Tensors.Internal;

/// <summary>
/// A float SIMD vector of one fixed width. Kernels are written once as generic methods over
/// <c>TV : IVec&lt;TV&gt;</c> and instantiated for <see cref="V512"/>, <see cref="V256"/> and
/// <see cref="V128"/> (ARM64 NEON serves V128). The JIT specialises each instantiation and inlines
/// these members, so the abstraction costs nothing; tests call every instantiation directly, so
/// every width is checked on any machine.
/// </summary>
internal interface IVec<TSelf> where TSelf : struct, IVec<TSelf>
{
    static abstract int Count { get; }
    static abstract bool IsAccelerated { get; }
    static abstract TSelf Zero { get; }
    static abstract TSelf Broadcast(float value);
    static abstract TSelf Load(ref readonly float source, nuint offset);
    static abstract void Store(TSelf value, ref float destination, nuint offset);
    static abstract TSelf Add(TSelf a, TSelf b);
    static abstract TSelf Sub(TSelf a, TSelf b);
    static abstract TSelf Mul(TSelf a, TSelf b);
    static abstract TSelf Div(TSelf a, TSelf b);
    /// <summary>a * b + c, fused where the hardware has FMA.</summary>
    static abstract TSelf Fma(TSelf a, TSelf b, TSelf c);
    static abstract TSelf Max(TSelf a, TSelf b);
    static abstract TSelf Min(TSelf a, TSelf b);
    static abstract TSelf Abs(TSelf a);
    static abstract TSelf Neg(TSelf a);
    static abstract TSelf Sqrt(TSelf a);
    static abstract TSelf Exp(TSelf a);
    /// <summary>Lane mask (all bits set) where a &gt; b.</summary>
    static abstract TSelf GreaterThan(TSelf a, TSelf b);
    /// <summary>Lanes of <paramref name="whenTrue"/> where <paramref name="mask"/> is set, else of <paramref name="whenFalse"/>.</summary>
    static abstract TSelf Select(TSelf mask, TSelf whenTrue, TSelf whenFalse);
    static abstract float Sum(TSelf a);
    static abstract float MaxAcross(TSelf a);
    /// <summary>Each 32-bit lane of <paramref name="bits"/> holds two BF16 values (element 2i in the low half, 2i+1 in the
    /// high half, little-endian): returns them widened, the even elements in one vector and the odd ones in the other.</summary>
    static abstract (TSelf Even, TSelf Odd) SplitBf16(TSelf bits);
}

internal readonly struct V512 : IVec<V512>
{
    public readonly Vector512<float> V;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public V512(Vector512<float> v) => V = v;
    public static int Count => Vector512<float>.Count;
    public static bool IsAccelerated => Vector512.IsHardwareAccelerated;
    public static V512 Zero => new(Vector512<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Broadcast(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Load(ref readonly float source, nuint offset) => new(Vector512.LoadUnsafe(in source, offset));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V512 value, ref float destination, nuint offset) => value.V.StoreUnsafe(ref destination, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Add(V512 a, V512 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Sub(V512 a, V512 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Mul(V512 a, V512 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Div(V512 a, V512 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Fma(V512 a, V512 b, V512 c) => new(Vector512.FusedMultiplyAdd(a.V, b.V, c.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Max(V512 a, V512 b) => new(Vector512.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Min(V512 a, V512 b) => new(Vector512.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Abs(V512 a) => new(Vector512.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Neg(V512 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Sqrt(V512 a) => new(Vector512.Sqrt(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Exp(V512 a) => new(Vector512.Exp(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 GreaterThan(V512 a, V512 b) => new(Vector512.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V512 Select(V512 mask, V512 t, V512 f) => new(Vector512.ConditionalSelect(mask.V, t.V, f.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V512 a) => Vector512.Sum(a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (V512 Even, V512 Odd) SplitBf16(V512 bits)
    {
        var u = bits.V.AsUInt32();
        return (new(Vector512.ShiftLeft(u, 16).AsSingle()), new((u & Vector512.Create(0xFFFF0000u)).AsSingle()));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(V512 a) => V256.MaxAcross(new V256(Vector256.Max(a.V.GetLower(), a.V.GetUpper())));
}

internal readonly struct V256 : IVec<V256>
{
    public readonly Vector256<float> V;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public V256(Vector256<float> v) => V = v;
    public static int Count => Vector256<float>.Count;
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated;
    public static V256 Zero => new(Vector256<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Broadcast(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Load(ref readonly float source, nuint offset) => new(Vector256.LoadUnsafe(in source, offset));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V256 value, ref float destination, nuint offset) => value.V.StoreUnsafe(ref destination, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Add(V256 a, V256 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Sub(V256 a, V256 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Mul(V256 a, V256 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Div(V256 a, V256 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Fma(V256 a, V256 b, V256 c) => new(Vector256.FusedMultiplyAdd(a.V, b.V, c.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Max(V256 a, V256 b) => new(Vector256.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Min(V256 a, V256 b) => new(Vector256.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Abs(V256 a) => new(Vector256.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Neg(V256 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Sqrt(V256 a) => new(Vector256.Sqrt(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Exp(V256 a) => new(Vector256.Exp(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 GreaterThan(V256 a, V256 b) => new(Vector256.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V256 Select(V256 mask, V256 t, V256 f) => new(Vector256.ConditionalSelect(mask.V, t.V, f.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V256 a) => Vector256.Sum(a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (V256 Even, V256 Odd) SplitBf16(V256 bits)
    {
        var u = bits.V.AsUInt32();
        return (new(Vector256.ShiftLeft(u, 16).AsSingle()), new((u & Vector256.Create(0xFFFF0000u)).AsSingle()));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float MaxAcross(V256 a) => V128.MaxAcross(new V128(Vector128.Max(a.V.GetLower(), a.V.GetUpper())));
}

internal readonly struct V128 : IVec<V128>
{
    public readonly Vector128<float> V;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public V128(Vector128<float> v) => V = v;
    public static int Count => Vector128<float>.Count;
    public static bool IsAccelerated => Vector128.IsHardwareAccelerated;
    public static V128 Zero => new(Vector128<float>.Zero);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Broadcast(float value) => new(Vector128.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Load(ref readonly float source, nuint offset) => new(Vector128.LoadUnsafe(in source, offset));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(V128 value, ref float destination, nuint offset) => value.V.StoreUnsafe(ref destination, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Add(V128 a, V128 b) => new(a.V + b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Sub(V128 a, V128 b) => new(a.V - b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Mul(V128 a, V128 b) => new(a.V * b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Div(V128 a, V128 b) => new(a.V / b.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Fma(V128 a, V128 b, V128 c) => new(Vector128.FusedMultiplyAdd(a.V, b.V, c.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Max(V128 a, V128 b) => new(Vector128.Max(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Min(V128 a, V128 b) => new(Vector128.Min(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Abs(V128 a) => new(Vector128.Abs(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Neg(V128 a) => new(-a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Sqrt(V128 a) => new(Vector128.Sqrt(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Exp(V128 a) => new(Vector128.Exp(a.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 GreaterThan(V128 a, V128 b) => new(Vector128.GreaterThan(a.V, b.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static V128 Select(V128 mask, V128 t, V128 f) => new(Vector128.ConditionalSelect(mask.V, t.V, f.V));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(V128 a) => Vector128.Sum(a.V);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (V128 Even, V128 Odd) SplitBf16(V128 bits)
    {
        var u = bits.V.AsUInt32();
        return (new(Vector128.ShiftLeft(u, 16).AsSingle()), new((u & Vector128.Create(0xFFFF0000u)).AsSingle()));
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(V128 a) => MathF.Max(MathF.Max(a.V[0], a.V[1]), MathF.Max(a.V[2], a.V[3]));
}

/// <summary>Which vector width the kernels use on this machine.</summary>
public enum SimdWidth { Scalar = 0, V128 = 128, V256 = 256, V512 = 512 }

/// <summary>Picks the kernel width once per process: the widest accelerated one, unless
/// <c>EDGETUNE_SIMD</c> (0, 128, 256 or 512) asks for a narrower one.</summary>
public static class Simd
{
    public static readonly SimdWidth Width = Pick();

    private static SimdWidth Pick()
    {
        SimdWidth best = Vector512.IsHardwareAccelerated ? SimdWidth.V512
            : Vector256.IsHardwareAccelerated ? SimdWidth.V256
            : Vector128.IsHardwareAccelerated ? SimdWidth.V128
            : SimdWidth.Scalar;
        if (int.TryParse(Environment.GetEnvironmentVariable("EDGETUNE_SIMD"), out int want)
            && Enum.IsDefined(typeof(SimdWidth), want) && want <= (int)best)
            return (SimdWidth)want;
        return best;
    }
}
