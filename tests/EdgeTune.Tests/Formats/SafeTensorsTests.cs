using System.Buffers.Binary;
using System.Text;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static float[] Seq(int n, float scale = 0.25f) => Enumerable.Range(0, n).Select(i => (i - n / 2) * scale).ToArray();

    [Fact]
    public void RoundTripAllDTypesAndMetadata()
    {
        string path = _dir.File("m.safetensors");
        using var f32 = Tensor.From<float>(Seq(15), [3, 5], "a.f32");
        using var f16 = f32.To(DType.F16);
        using var bf16 = f32.To(DType.BF16);
        using var f64 = f32.To(DType.F64);
        using var i32 = Tensor.From<int>([1, -2, int.MaxValue], [3], "i");
        using var i64 = Tensor.From<long>([long.MinValue, 5], [2, 1], "l");
        using var u8 = Tensor.From<byte>([7, 255, 0], [3], "u");
        using var empty = Tensor.Zeros(DType.F32, [0, 4], "empty");
        var named = new Dictionary<string, Tensor>
        {
            ["a.f32"] = f32, ["b.f16"] = f16, ["c.bf16"] = bf16, ["d.f64"] = f64,
            ["i"] = i32, ["l"] = i64, ["u"] = u8, ["empty"] = empty,
        };
        SafeTensorsWriter.Write(path, named, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo" });

        byte[] raw = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0UL, (8 + n) % 8);
        Assert.Equal((byte)'{', raw[8]);
        Assert.All(raw.AsSpan(8, (int)n).ToArray().Reverse().TakeWhile(x => x != (byte)'}'), x => Assert.Equal((byte)' ', x));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));

        using var st = SafeTensorsFile.Open(path);
        // Laid out by element size, largest first, so each tensor is aligned to its element size.
        Assert.Equal(["d.f64", "l", "a.f32", "i", "empty", "b.f16", "c.bf16", "u"], st.Tensors.Select(t => t.Name));
        unsafe
        {
            foreach (var info in st.Tensors)
                Assert.Equal(0, ((long)st.GetTensor(info.Name).Pointer - (long)st.GetTensor("d.f64").Pointer) % info.DType.BlockBytes());
        }
        Assert.Equal("pt", st.Metadata["format"]);
        Assert.Equal("héllo", st.Metadata["note"]);
        Assert.Equal(RopeStyle.HalfSplit, st.RopeLayout);
        foreach (var (name, t) in named)
        {
            var info = st.Tensors.Single(x => x.Name == name);
            Assert.Equal(t.DType, info.DType);
            Assert.Equal(t.Shape.ToArray(), info.Shape);
            var v = st.GetTensor(name);
            Assert.True(v.IsReadOnly);
            Assert.Same(st.GetTensor("a.f32").Storage, v.Storage); // one mapping, views into it
            Assert.Equal(t.Bytes.ToArray(), v.Bytes.ToArray());
        }
        Assert.Equal(f32.ToFloatArray(), st.GetTensor("b.f16").ToFloatArray());
        var e = Assert.Throws<KeyNotFoundException>(() => st.GetTensor("nope"));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void OverwriteIsAtomicReplacement()
    {
        string path = _dir.File("w.safetensors");
        using var a = Tensor.From<float>([1, 2], [2], "x");
        using var b = Tensor.From<float>([3, 4, 5], [3], "x");
        SafeTensorsWriter.Write(path, [a]);
        SafeTensorsWriter.Write(path, [b]);
        using var st = SafeTensorsFile.Open(path);
        Assert.Equal([3f, 4, 5], st.GetTensor("x").ToFloatArray());
        Assert.Single(Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void WriterRejectsDuplicateNamesAndBlockTypes()
    {
        using var a = Tensor.From<float>([1, 2], [2], "x");
        string path = _dir.File("bad.safetensors");
        var e1 = Assert.Throws<CheckpointFormatException>(() => SafeTensorsWriter.Write(path, [a, a]));
        Assert.Contains("'x'", e1.Message);
        using var q = Tensor.Zeros(DType.Q8_0, [32], "q");
        var e2 = Assert.Throws<CheckpointFormatException>(() => SafeTensorsWriter.Write(path, [q]));
        Assert.Contains("Q8_0", e2.Message);
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }

    // ---- malformed files, each with its own error ----

    private string Raw(string header, int dataBytes, ulong? declaredLength = null)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        string path = _dir.File($"bad{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static CheckpointFormatException Fails(string path)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void HeaderLengthBeyondFile()
    {
        var e = Fails(Raw("{}", 0, declaredLength: 1_000_000_000_000));
        Assert.Contains("beyond the end of the file", e.Message);
        var tiny = _dir.File("tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("too short", Fails(tiny).Message);
    }

    [Fact]
    public void OffsetsOutOfRange()
    {
        var e = Fails(Raw("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 12));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("out of range", e.Message);
    }

    [Fact]
    public void OverlappingTensors()
    {
        var e = Fails(Raw("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12));
        Assert.Contains("overlap", e.Message);
        Assert.Equal("b", e.TensorName);
    }

    [Fact]
    public void SizeNotMatchingShape()
    {
        var e = Fails(Raw("""{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}}""", 8));
        Assert.Contains("needs 12", e.Message);
        Assert.Equal("w", e.TensorName);
    }

    [Fact]
    public void UnknownAndUnsupportedDTypes()
    {
        Assert.Contains("unknown dtype 'F12'", Fails(Raw("""{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}""", 4)).Message);
        Assert.Contains("'BOOL' is not supported", Fails(Raw("""{"w":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}""", 1)).Message);
    }

    [Fact]
    public void DuplicateNames()
    {
        var e = Fails(Raw("""{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2));
        Assert.Contains("twice", e.Message);
        Assert.Equal("w", e.TensorName);
    }

    [Fact]
    public void BadJsonAndBadEntries()
    {
        Assert.Contains("not valid JSON", Fails(Raw("{\"w\":", 0)).Message);
        Assert.Contains("JSON object", Fails(Raw("[1,2]", 0)).Message);
        Assert.Contains("data_offsets", Fails(Raw("""{"w":{"dtype":"U8","shape":[1]}}""", 1)).Message);
        Assert.Contains("shape entry", Fails(Raw("""{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}""", 0)).Message);
        Assert.Contains("__metadata__", Fails(Raw("""{"__metadata__":{"a":1}}""", 0)).Message);
    }

    // ---- sharded checkpoints ----

    private void WriteShards(out float[] a, out float[] b, out float[] c)
    {
        a = Seq(6); b = Seq(4, 2f); c = Seq(3, -1f);
        using var ta = Tensor.From<float>(a, [2, 3], "model.a");
        using var tb = Tensor.From<float>(b, [4], "model.b");
        using var tc = Tensor.From<float>(c, [3], "lm_head.weight");
        SafeTensorsWriter.Write(_dir.File("model-00001-of-00002.safetensors"), [ta, tb]);
        SafeTensorsWriter.Write(_dir.File("model-00002-of-00002.safetensors"), [tc]);
    }

    private void WriteIndex(string weightMap) =>
        File.WriteAllText(_dir.File(SafeTensorsCheckpoint.IndexFileName), "{\"metadata\":{\"total_size\":52},\"weight_map\":{" + weightMap + "}}");

    [Fact]
    public void ShardedIndexFromFileOrFolder()
    {
        WriteShards(out var a, out var b, out var c);
        WriteIndex("""
            "model.a":"model-00001-of-00002.safetensors","lm_head.weight":"model-00002-of-00002.safetensors",
            "model.b":"model-00001-of-00002.safetensors"
            """);
        foreach (string open in new[] { _dir.Path, _dir.File(SafeTensorsCheckpoint.IndexFileName) })
        {
            using var ck = SafeTensorsCheckpoint.Open(open);
            Assert.Equal(2, ck.Shards.Count);
            Assert.Equal(["model.a", "model.b", "lm_head.weight"], ck.Tensors.Select(t => t.Name));
            Assert.Equal(a, ck.GetTensor("model.a").ToFloatArray());
            Assert.Equal(b, ck.GetTensor("model.b").ToFloatArray());
            Assert.Equal(c, ck.GetTensor("lm_head.weight").ToFloatArray());
            Assert.Equal([2, 3], ck.GetTensor("model.a").Shape.ToArray());
        }
    }

    [Fact]
    public void ShardedIndexErrors()
    {
        WriteShards(out _, out _, out _);
        WriteIndex("""
            "model.a":"model-00001-of-00002.safetensors","lm_head.weight":"model-00001-of-00002.safetensors"
            """);
        var e1 = Assert.Throws<CheckpointFormatException>(() => SafeTensorsCheckpoint.Open(_dir.Path));
        Assert.Equal("lm_head.weight", e1.TensorName);
        Assert.Contains("no such tensor", e1.Message);

        WriteIndex("""
            "model.a":"model-00003-of-00003.safetensors"
            """);
        var e2 = Assert.Throws<CheckpointFormatException>(() => SafeTensorsCheckpoint.Open(_dir.Path));
        Assert.Contains("model-00003-of-00003.safetensors", e2.Message);
        Assert.Contains("does not exist", e2.Message);

        File.WriteAllText(_dir.File(SafeTensorsCheckpoint.IndexFileName), """{"metadata":{}}""");
        Assert.Contains("weight_map", Assert.Throws<CheckpointFormatException>(() => SafeTensorsCheckpoint.Open(_dir.Path)).Message);
    }

    [Fact]
    public void SingleFileFolder()
    {
        using var t = Tensor.From<float>([1, 2, 3], [3], "w");
        SafeTensorsWriter.Write(_dir.File(SafeTensorsCheckpoint.SingleFileName), [t]);
        using var ck = SafeTensorsCheckpoint.Open(_dir.Path);
        Assert.True(ck.Contains("w"));
        Assert.Equal([1f, 2, 3], ck.GetTensor("w").ToFloatArray());
        Assert.Throws<FileNotFoundException>(() => SafeTensorsCheckpoint.Open(_dir.File("sub")));
    }
}
