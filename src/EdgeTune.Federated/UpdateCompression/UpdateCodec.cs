using System.Buffers.Binary;
using EdgeTune.Federated.UpdateCompression.Internal;

namespace EdgeTune.Federated.UpdateCompression;

/// <summary>
/// Encodes a client's update (a flat float vector) for the trip to the server and decodes it there.
/// Every payload starts with a versioned 16-byte header (magic "ETUC", version, codec, value count);
/// <see cref="Decode"/> checks every size against the payload before reading, so hostile bytes raise
/// <see cref="FormatException"/> and never read out of range. Codecs:
/// <see cref="Float32"/> (raw little-endian floats), <see cref="Int8"/> (<see cref="Int8ChunkQuantizer"/>)
/// and <see cref="TopK"/> (<see cref="TopKSparsifier"/>). Lossy codecs are meant to be used through
/// <see cref="ErrorFeedback"/> on the client.
/// </summary>
public static class UpdateCodec
{
    public const string Float32 = "f32";
    public const string Int8 = "int8";
    public const string TopK = "topk";

    public static IReadOnlyList<string> Names { get; } = [Float32, Int8, TopK];

    public static byte[] EncodeFloat32(ReadOnlySpan<float> values)
    {
        var bytes = new byte[CodecHeader.Size + 4L * values.Length];
        CodecHeader.Write(bytes, CodecHeader.Float32Id, values.Length);
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(CodecHeader.Size + 4 * i), values[i]);
        return bytes;
    }

    /// <summary>Encodes with the named codec (<paramref name="parameter"/>: chunk size for int8, k for top-k; ≤ 0 = default).</summary>
    public static byte[] Encode(string codec, ReadOnlySpan<float> values, int parameter = 0) => codec switch
    {
        Float32 => EncodeFloat32(values),
        Int8 => Int8ChunkQuantizer.Encode(values, parameter > 0 ? parameter : Int8ChunkQuantizer.DefaultChunkSize),
        TopK => TopKSparsifier.Encode(values, parameter > 0 ? parameter : Math.Max(1, values.Length / 100)),
        _ => throw new ArgumentException($"unknown update codec '{codec}'; expected one of {string.Join(", ", Names)}", nameof(codec)),
    };

    /// <summary>The codec name a payload declares (header checked).</summary>
    public static string CodecOf(ReadOnlySpan<byte> payload) => CodecHeader.Read(payload).Codec switch
    {
        CodecHeader.Float32Id => Float32,
        CodecHeader.Int8Id => Int8,
        CodecHeader.TopKId => TopK,
        var id => throw new FormatException($"update payload: unknown codec id {id}"),
    };

    /// <summary>The number of values a payload declares (header checked).</summary>
    public static int LengthOf(ReadOnlySpan<byte> payload) => CodecHeader.Read(payload).Length;

    /// <summary>Largest value count decoded when no expected length is given (a sparse payload could
    /// otherwise make the decoder allocate whatever its header claims).</summary>
    public const int MaxUncheckedLength = 1 << 24;

    /// <summary>Decodes any codec into <paramref name="destination"/>, whose length is the expected value count (a payload
    /// of another length is refused). f32 payloads are read in place; the other codecs decode through a temporary vector.</summary>
    public static void DecodeInto(ReadOnlySpan<byte> payload, Span<float> destination)
    {
        var (codec, n) = CodecHeader.Read(payload);
        if (n != destination.Length) throw new FormatException($"update payload: declares {n} values; {destination.Length} expected");
        if (codec != CodecHeader.Float32Id)
        {
            Decode(payload, destination.Length).CopyTo(destination);
            return;
        }
        var body = payload[CodecHeader.Size..];
        if (body.Length != 4L * n) throw new FormatException($"update payload (f32): body is {body.Length} bytes; {4L * n} expected");
        for (int i = 0; i < n; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(body[(4 * i)..]);
    }

    /// <summary>Decodes any codec. With <paramref name="expectedLength"/> ≥ 0 (the layout's length; pass it on
    /// a server) a payload of another length is refused; without it, at most <see cref="MaxUncheckedLength"/> values.</summary>
    public static float[] Decode(ReadOnlySpan<byte> payload, long expectedLength = -1)
    {
        var (codec, n) = CodecHeader.Read(payload);
        if (expectedLength >= 0 && n != expectedLength)
            throw new FormatException($"update payload: declares {n} values; {expectedLength} expected");
        if (expectedLength < 0 && n > MaxUncheckedLength)
            throw new FormatException($"update payload: declares {n} values, more than {MaxUncheckedLength} without an expected length");
        var body = payload[CodecHeader.Size..];
        switch (codec)
        {
            case CodecHeader.Float32Id:
                var r = new float[n];
                DecodeInto(payload, r);
                return r;
            case CodecHeader.Int8Id: return Int8ChunkQuantizer.DecodeBody(body, n);
            case CodecHeader.TopKId: return TopKSparsifier.DecodeBody(body, n);
            default: throw new FormatException($"update payload: unknown codec id {codec}");
        }
    }
}
