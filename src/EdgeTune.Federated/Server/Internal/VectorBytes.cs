using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace EdgeTune.Federated.Server.Internal;

/// <summary>Float vectors as little-endian float32 bytes (the "f32" encoding and stored global versions).</summary>
internal static class VectorBytes
{
    public static byte[] ToBytes(ReadOnlySpan<float> v)
    {
        var b = new byte[v.Length * 4];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(v).CopyTo(b);
        else for (int i = 0; i < v.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), v[i]);
        return b;
    }

    /// <summary>The floats of <paramref name="b"/>; throws when its length is not <paramref name="expected"/> × 4.</summary>
    public static float[] ToFloats(ReadOnlySpan<byte> b, long expected)
    {
        if (b.Length != expected * 4)
            throw new FormatException($"f32 update: {b.Length} bytes, expected {expected} floats = {expected * 4} bytes");
        var v = new float[expected];
        if (BitConverter.IsLittleEndian) b.CopyTo(MemoryMarshal.AsBytes(v.AsSpan()));
        else for (int i = 0; i < v.Length; i++) v[i] = BinaryPrimitives.ReadSingleLittleEndian(b[(i * 4)..]);
        return v;
    }
}
