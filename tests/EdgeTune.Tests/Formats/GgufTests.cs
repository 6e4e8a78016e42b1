using System.Buffers.Binary;
using System.Text;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public sealed class GgufTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<KeyValuePair<string, GgufValue>> AllMetadataTypes() =>
    [
        new("general.architecture", "llama"),
        new("u8", GgufValue.UInt8(200)),
        new("i8", GgufValue.Int8(-100)),
        new("u16", GgufValue.UInt16(60000)),
        new("i16", GgufValue.Int16(-30000)),
        new("u32", GgufValue.UInt32(4_000_000_000)),
        new("i32", GgufValue.Int32(-2_000_000_000)),
        new("f32", GgufValue.Float32(1e-5f)),
        new("bool.t", GgufValue.Bool(true)),
        new("bool.f", GgufValue.Bool(false)),
        new("str.utf8", GgufValue.String("héllo ▁world 🦙")),
        new("str.empty", GgufValue.String("")),
        new("u64", GgufValue.UInt64(ulong.MaxValue)),
        new("i64", GgufValue.Int64(long.MinValue)),
        new("f64", GgufValue.Float64(Math.PI)),
        new("arr.u8", GgufValue.Array(new byte[] { 1, 2, 255 })),
        new("arr.i8", GgufValue.Array(new sbyte[] { -1, 2 })),
        new("arr.u16", GgufValue.Array(new ushort[] { 1, 65535 })),
        new("arr.i16", GgufValue.Array(new short[] { -5 })),
        new("arr.u32", GgufValue.Array(new uint[] { 7, 8 })),
        new("arr.i32", GgufValue.Array(new[] { 1, 3, -4 })),
        new("arr.f32", GgufValue.Array(new[] { -1000f, 0.5f })),
        new("arr.bool", GgufValue.Array(new[] { true, false, true })),
        new("arr.str", GgufValue.Array(new[] { "<unk>", "", "Ġt" })),
        new("arr.u64", GgufValue.Array(new ulong[] { ulong.MaxValue })),
        new("arr.i64", GgufValue.Array(new long[] { -1, 1 })),
        new("arr.f64", GgufValue.Array(new[] { 1.5, -2.5 })),
        new("arr.empty", GgufValue.Array(Array.Empty<int>())),
        new("arr.nested", GgufValue.Array(new[] { GgufValue.Array(new[] { "a", "b" }), GgufValue.Array(new[] { "c" }) })),
    ];

    [Fact]
    public void RoundTripAllMetadataAndTensorTypes()
    {
        var rng = new Random(1234);
        float[] data = Enumerable.Range(0, 2 * 64).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
        using var f32 = Tensor.From<float>(data, [2, 64], "blk.0.attn_q.weight");
        using var f16 = f32.To(DType.F16);
        using var bf16 = f32.To(DType.BF16);
        using var q8 = GgufQuant.Quantize(f32, DType.Q8_0);
        using var q4 = GgufQuant.Quantize(f32, DType.Q4_0);
        using var vec = Tensor.From<float>([1, 2, 3], [3], "v");
        using var cube = Tensor.From<float>(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), [2, 3, 4], "cube");
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("t.f32", f32), new("t.f16", f16), new("t.bf16", bf16), new("t.q8_0", q8), new("t.q4_0", q4),
            new("v", vec), new("cube", cube),
        };
        var meta = AllMetadataTypes();
        string path = _dir.File("all.gguf");
        GgufWriter.Write(path, meta, tensors);
        Assert.Single(Directory.GetFiles(_dir.Path));

        using var g = GgufFile.Open(path);
        Assert.Equal(3u, g.Version);
        Assert.Equal(32u, g.Alignment);
        Assert.Equal(0, g.DataOffset % 32);
        Assert.Equal("llama", g.Architecture);
        Assert.Equal(meta.Select(m => m.Key), g.MetadataKeys);
        foreach (var (k, v) in meta)
        {
            Assert.Equal(v, g.Metadata[k]);
            Assert.Equal(v.Type, g.Metadata[k].Type);
        }
        Assert.Equal(RopeStyle.Interleaved, g.RopeLayout);
        Assert.Equal(tensors.Select(t => t.Key), g.Tensors.Select(t => t.Name));
        foreach (var (name, t) in tensors)
        {
            var info = g.TensorInfos.Single(x => x.Name == name);
            Assert.Equal(0, info.Offset % 32);
            var back = g.GetTensor(name);
            Assert.Equal(t.DType, back.DType);
            Assert.Equal(t.Shape.ToArray(), back.Shape.ToArray());
            Assert.Equal(t.Bytes.ToArray(), back.Bytes.ToArray());
            Assert.True(back.IsReadOnly);
        }
        // GGML order: ne[0] is the row length.
        Assert.Equal([64L, 2], g.TensorInfos.Single(x => x.Name == "t.q8_0").Ne);
        Assert.Equal([4L, 3, 2], g.TensorInfos.Single(x => x.Name == "cube").Ne);
        Assert.Equal(GgmlType.Q4_0, g.TensorInfos.Single(x => x.Name == "t.q4_0").Type);
        Assert.Equal(18 * 4, g.TensorInfos.Single(x => x.Name == "t.q4_0").ByteLength);
    }

    [Fact]
    public void RawLayoutMatchesTheSpec()
    {
        using var t = Tensor.From<float>([1, 2, 3, 4, 5, 6], [2, 3], "w");
        string path = _dir.File("raw.gguf");
        GgufWriter.Write(path, [new("general.alignment", GgufValue.UInt32(64)), new("k", "v")], [t]);
        byte[] b = File.ReadAllBytes(path);
        Assert.Equal("GGUF"u8.ToArray(), b[..4]);
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(4)));
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(8)));
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(16)));
        using var g = GgufFile.Open(path);
        Assert.Equal(64u, g.Alignment);
        Assert.Equal(0, g.DataOffset % 64);
        Assert.Equal(g.DataOffset + 64, b.Length); // 24 data bytes padded to 64
        Assert.Equal(1f, BitConverter.ToSingle(b, (int)g.DataOffset));
        Assert.Equal([1f, 2, 3, 4, 5, 6], g.GetTensor("w").ToFloatArray());
    }

    [SkippableFact]
    public void ReadsRealGpt2VocabFile()
    {
        using var g = GgufFile.Open(TestAssets.Require("llamacpp-vocab/ggml-vocab-gpt-2.gguf"));
        Assert.Equal(3u, g.Version);
        Assert.Empty(g.TensorInfos);
        Assert.Equal(16, g.Metadata.Count);
        Assert.Equal("gpt2", g.Architecture);
        Assert.Empty(g.Tensors);
        Assert.Equal("gpt2", g.GetMetadata("tokenizer.ggml.model").AsString());
        var tokens = g.GetMetadata("tokenizer.ggml.tokens").AsStringArray();
        Assert.Equal(50257, tokens.Length);
        Assert.Equal("!", tokens[0]);
        Assert.Equal(50000, g.GetMetadata("tokenizer.ggml.merges").AsStringArray().Length);
        Assert.Equal("Ġ t", g.GetMetadata("tokenizer.ggml.merges").AsStringArray()[0]);
        Assert.Equal(50257, g.GetMetadata("tokenizer.ggml.token_type").AsArray<int>().Length);
        Assert.Equal(50256, g.GetMetadata("tokenizer.ggml.eos_token_id").AsInt32());
        Assert.Equal(12, g.GetMetadata("gpt2.block_count").AsInt32());
    }

    [SkippableFact]
    public void ReadsRealPhi3VocabFileAndRewritesItIdentically()
    {
        string src = TestAssets.Require("llamacpp-vocab/ggml-vocab-phi-3.gguf");
        using var g = GgufFile.Open(src);
        Assert.Equal("phi3", g.Architecture);
        Assert.Equal(RopeStyle.HalfSplit, g.RopeLayout); // NEOX rope in llama.cpp
        Assert.Equal("llama", g.GetMetadata("tokenizer.ggml.model").AsString());
        Assert.Equal(32064, g.GetMetadata("tokenizer.ggml.tokens").ArrayLength);
        Assert.Equal("<s>", g.GetMetadata("tokenizer.ggml.tokens").AsStringArray()[1]);
        Assert.Equal(32064, g.GetMetadata("tokenizer.ggml.scores").AsArray<float>().Length);
        Assert.Equal(-1000f, g.GetMetadata("tokenizer.ggml.scores").AsArray<float>()[0]);
        Assert.True(g.GetMetadata("tokenizer.ggml.add_bos_token").AsBool());
        Assert.False(g.GetMetadata("tokenizer.ggml.add_eos_token").AsBool());
        Assert.Equal(32000, g.GetMetadata("tokenizer.ggml.eos_token_id").AsInt32());
        Assert.Equal(1e-5, g.GetMetadata("phi3.attention.layer_norm_rms_epsilon").AsDouble(), 9);
        Assert.StartsWith("{{ bos_token }}", g.GetMetadata("tokenizer.chat_template").AsString());

        // Writing the same metadata back reproduces llama.cpp's file byte for byte.
        string copy = _dir.File("phi3-copy.gguf");
        GgufWriter.Write(copy, g.MetadataKeys.Select(k => new KeyValuePair<string, GgufValue>(k, g.Metadata[k])), Array.Empty<Tensor>());
        Assert.Equal(File.ReadAllBytes(src), File.ReadAllBytes(copy));
    }

    // ---- malformed files ----

    private string WriteBytes(byte[] b)
    {
        string p = _dir.File($"bad{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(p, b);
        return p;
    }

    private static CheckpointFormatException Fails(string path)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        return e;
    }

    private static byte[] Header(uint version, ulong tensors, ulong kvs, params byte[][] rest)
    {
        var ms = new MemoryStream();
        ms.Write("GGUF"u8);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(b, version); ms.Write(b[..4]);
        BinaryPrimitives.WriteUInt64LittleEndian(b, tensors); ms.Write(b);
        BinaryPrimitives.WriteUInt64LittleEndian(b, kvs); ms.Write(b);
        foreach (var r in rest) ms.Write(r);
        return ms.ToArray();
    }

    private static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] Str(string s) => [.. U64((ulong)Encoding.UTF8.GetByteCount(s)), .. Encoding.UTF8.GetBytes(s)];

    [Fact]
    public void BadMagicAndVersion()
    {
        Assert.Contains("bad magic", Fails(WriteBytes("GGML\u0003\0\0\0"u8.ToArray())).Message);
        Assert.Contains("too short", Fails(WriteBytes([0x47, 0x47])).Message);
        Assert.Contains("version 1", Fails(WriteBytes(Header(1, 0, 0))).Message);
        Assert.Contains("big-endian", Fails(WriteBytes(Header(0x03000000, 0, 0))).Message);
    }

    [Fact]
    public void TruncatedFiles()
    {
        string path = _dir.File("good.gguf");
        using (var t = Tensor.From<float>([1, 2, 3, 4], [4], "w"))
            GgufWriter.Write(path, [new("a", GgufValue.Array(new[] { "x", "yy" })), new("b", 5u)], [t]);
        byte[] good = File.ReadAllBytes(path);
        using (GgufFile.Open(path)) { }
        foreach (int cut in new[] { 10, 24, 30, 40, 60, 100, good.Length - 17 })
        {
            var e = Fails(WriteBytes(good[..cut]));
            Assert.True(e.Message.Contains("truncated") || e.Message.Contains("out of range") || e.Message.Contains("beyond") || e.Message.Contains("impossible"), e.Message);
        }
        Assert.Equal("w", Fails(WriteBytes(good[..^17])).TensorName); // 16 data bytes + 16 padding
    }

    [Fact]
    public void AbsurdCountsAndLengthsDoNotAllocate()
    {
        long before = GC.GetTotalAllocatedBytes();
        Assert.Contains("tensor count", Fails(WriteBytes(Header(3, ulong.MaxValue / 2, 0))).Message);
        Assert.Contains("metadata count", Fails(WriteBytes(Header(3, 0, 1UL << 40))).Message);
        Assert.Contains("string length", Fails(WriteBytes(Header(3, 0, 1, U64(1UL << 62), new byte[16]))).Message);
        Assert.Contains("array length", Fails(WriteBytes(Header(3, 0, 1, Str("k"), U32(9), U32(6), U64(1UL << 33), new byte[16]))).Message);
        Assert.Contains("array length", Fails(WriteBytes(Header(3, 0, 1, Str("k"), U32(9), U32(8), U64(ulong.MaxValue), new byte[16]))).Message);
        Assert.Contains("unknown value type", Fails(WriteBytes(Header(3, 0, 1, Str("k"), U32(99), new byte[8]))).Message);
        Assert.Contains("dimensions", Fails(WriteBytes(Header(3, 1, 0, Str("w"), U32(7), new byte[64]))).Message);
        Assert.Contains("too large", Fails(WriteBytes(Header(3, 1, 0, Str("w"), U32(1), U64(1UL << 40), U32(0), U64(0), new byte[64]))).Message);
        Assert.Contains("unknown GGML tensor type", Fails(WriteBytes(Header(3, 1, 0, Str("w"), U32(1), U64(4), U32(77), U64(0), new byte[64]))).Message);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 50_000_000);
    }

    [Fact]
    public void BadAlignmentAndOffsets()
    {
        Assert.Contains("UInt32", Fails(WriteBytes(Header(3, 0, 1, Str("general.alignment"), U32(5), U32(32)))).Message);
        Assert.Contains("power of two", Fails(WriteBytes(Header(3, 0, 1, Str("general.alignment"), U32(4), U32(24)))).Message);
        var e = Fails(WriteBytes(Header(3, 1, 0, Str("w"), U32(1), U64(4), U32(0), U64(8), new byte[64])));
        Assert.Contains("multiple of the alignment", e.Message);
        Assert.Equal("w", e.TensorName);
        var e2 = Fails(WriteBytes(Header(3, 2, 0, Str("a"), U32(1), U64(16), U32(0), U64(0), Str("b"), U32(1), U64(16), U32(0), U64(32), new byte[128])));
        Assert.Contains("overlaps tensor 'a'", e2.Message);
    }

    [Fact]
    public void WriterRejectsBadInput()
    {
        using var t = Tensor.From<float>([1, 2], [2], "w");
        using var u8 = Tensor.From<byte>([1], [1], "u");
        string p = _dir.File("x.gguf");
        Assert.Contains("twice", Assert.Throws<CheckpointFormatException>(() => GgufWriter.Write(p, [new("a", 1), new("a", 2)], [t])).Message);
        Assert.Contains("twice", Assert.Throws<CheckpointFormatException>(() => GgufWriter.Write(p, [], [t, t])).Message);
        Assert.Contains("U8", Assert.Throws<CheckpointFormatException>(() => GgufWriter.Write(p, [], [u8])).Message);
        Assert.Contains("power of two", Assert.Throws<CheckpointFormatException>(() => GgufWriter.Write(p, [new("general.alignment", GgufValue.UInt32(48))], [t])).Message);
        Assert.False(File.Exists(p));
    }

    [Fact]
    public void ValueAccessorsConvertAndRefuse()
    {
        Assert.Equal(200, GgufValue.UInt8(200).AsInt32());
        Assert.Equal(3.0, GgufValue.Int16(3).AsDouble());
        Assert.Throws<InvalidCastException>(() => GgufValue.String("x").AsInt64());
        Assert.Throws<InvalidCastException>(() => GgufValue.Array(new[] { 1 }).AsArray<float>());
        Assert.Throws<OverflowException>(() => GgufValue.UInt64(ulong.MaxValue).AsInt64());
        Assert.Throws<ArgumentException>(() => GgufValue.Array(new[] { GgufValue.Int32(1) }));
    }
}
