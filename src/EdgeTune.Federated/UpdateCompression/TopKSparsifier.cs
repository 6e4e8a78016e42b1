using System.Buffers.Binary;
using EdgeTune.Federated.UpdateCompression.Internal;

namespace EdgeTune.Federated.UpdateCompression;

/// <summary>
/// Top-k sparsification: keeps the k values of largest magnitude (ties: lower index first), sends them
/// as (index, value) pairs and drops the rest (to be carried by <see cref="ErrorFeedback"/>).
/// Body after the header: k (int32) · k strictly increasing uint32 indices · k float32 values.
/// </summary>
public static class TopKSparsifier
{
    /// <summary>Indices of the k largest magnitudes, ascending.</summary>
    public static int[] Select(ReadOnlySpan<float> values, int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), k, "top-k: k must be ≥ 0");
        k = Math.Min(k, values.Length);
        var mags = new float[values.Length];
        for (int i = 0; i < mags.Length; i++)
        {
            if (!float.IsFinite(values[i])) throw new ArgumentException($"top-k: value {i} is {values[i]}; finite values expected");
            mags[i] = Math.Abs(values[i]);
        }
        var order = Enumerable.Range(0, values.Length).ToArray();
        // A total order (magnitude descending, then index ascending) makes the choice deterministic.
        Array.Sort(order, (a, b) => mags[a] != mags[b] ? mags[b].CompareTo(mags[a]) : a.CompareTo(b));
        var chosen = order[..k];
        Array.Sort(chosen);
        return chosen;
    }

    public static byte[] Encode(ReadOnlySpan<float> values, int k)
    {
        var idx = Select(values, k);
        var bytes = new byte[CodecHeader.Size + 4 + 8L * idx.Length];
        CodecHeader.Write(bytes, CodecHeader.TopKId, values.Length);
        var body = bytes.AsSpan(CodecHeader.Size);
        BinaryPrimitives.WriteInt32LittleEndian(body, idx.Length);
        for (int j = 0; j < idx.Length; j++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(body[(4 + 4 * j)..], (uint)idx[j]);
            BinaryPrimitives.WriteSingleLittleEndian(body[(4 + 4 * idx.Length + 4 * j)..], values[idx[j]]);
        }
        return bytes;
    }

    internal static float[] DecodeBody(ReadOnlySpan<byte> body, int n)
    {
        if (body.Length < 4) throw new FormatException("update payload (top-k): body shorter than its count field");
        int k = BinaryPrimitives.ReadInt32LittleEndian(body);
        if (k < 0 || k > n || body.Length != 4 + 8L * k)
            throw new FormatException($"update payload (top-k): {k} entries for {n} values in a {body.Length}-byte body");
        var r = new float[n];
        long previous = -1;
        for (int j = 0; j < k; j++)
        {
            uint i = BinaryPrimitives.ReadUInt32LittleEndian(body[(4 + 4 * j)..]);
            if (i >= (uint)n || i <= previous) throw new FormatException($"update payload (top-k): index {i} at entry {j} is out of range or not increasing");
            float v = BinaryPrimitives.ReadSingleLittleEndian(body[(4 + 4 * k + 4 * j)..]);
            if (!float.IsFinite(v)) throw new FormatException($"update payload (top-k): entry {j} value is {v}");
            r[i] = v;
            previous = i;
        }
        return r;
    }
}
