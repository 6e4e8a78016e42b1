using EdgeTune.Formats;
using EdgeTune.Formats.Onnx;

namespace EdgeTune.Tests.Formats.Onnx;

/// <summary>Hand-written ModelProto bytes: every way an initializer's data is stored, and the files that must be refused.</summary>
public sealed class OnnxGraphTests
{
    [Fact]
    public void ReadsRawDataPackedAndUnpackedFloatData()
    {
        float[] values = [1.5f, -2f, 3.25f, 0f, 1e-7f, -1e7f];
        var raw = Tensor("w_raw", [2, 3], OnnxDataType.Float, Field(9, Bytes(values)));
        var packed = Tensor("w_packed", [3, 2], OnnxDataType.Float, Field(4, Bytes(values)));
        var unpacked = Tensor("w_unpacked", [6], OnnxDataType.Float, values.SelectMany(v => Key(4, 5).Concat(BitConverter.GetBytes(v))).ToArray());
        var node = Field(1, [.. Field(1, "x"u8.ToArray()), .. Field(1, "w_raw"u8.ToArray()), .. Field(2, "y"u8.ToArray()), .. Field(3, "mm"u8.ToArray()), .. Field(4, "MatMul"u8.ToArray())]);
        var g = OnnxGraph.Parse(Model([.. node, .. raw, .. packed, .. unpacked]), "synthetic");

        Assert.Equal(3, g.Initializers.Count);
        Assert.Equal(values, g.Initializer("w_raw").ToFloatArray());
        Assert.Equal(values, g.Initializer("w_packed").ToFloatArray());
        Assert.Equal(values, g.Initializer("w_unpacked").ToFloatArray());
        using var t = g.Initializer("w_packed").ToTensor();
        Assert.Equal([3, 2], t.Shape.ToArray());
        Assert.Equal(values, t.ToFloatArray());
        var n = Assert.Single(g.Nodes);
        Assert.Equal(("mm", "MatMul"), (n.Name, n.OpType));
        Assert.Equal(["x", "w_raw"], n.Inputs);
        Assert.Equal(["y"], n.Outputs);
    }

    [Fact]
    public void RefusesOtherDataTypesByName()
    {
        var g = OnnxGraph.Parse(Model(Tensor("half", [2], 10, Field(9, new byte[4]))), "synthetic");
        var ex = Assert.Throws<CheckpointFormatException>(() => g.Initializer("half").ToTensor());
        Assert.Contains("FLOAT16", ex.Message);
        Assert.Contains("half", ex.Message);
    }

    [Fact]
    public void RefusesDataThatDoesNotFitTheDims()
    {
        var g = OnnxGraph.Parse(Model(Tensor("short", [4], OnnxDataType.Float, Field(9, Bytes([1f, 2f])))), "synthetic");
        var ex = Assert.Throws<CheckpointFormatException>(() => g.Initializer("short").ToFloatArray());
        Assert.Contains("8 bytes", ex.Message);
    }

    [Fact]
    public void RefusesTruncatedAndGraphlessFiles()
    {
        var model = Model(Tensor("w", [2], OnnxDataType.Float, Field(9, Bytes([1f, 2f]))));
        Assert.Throws<CheckpointFormatException>(() => OnnxGraph.Parse(model[..^3], "cut"));
        Assert.Throws<CheckpointFormatException>(() => OnnxGraph.Parse([0x08, 0x07], "no graph"));
        Assert.Throws<CheckpointFormatException>(() => OnnxGraph.Parse(model, "synthetic").Initializer("missing"));
    }

    // --- a minimal protobuf writer for the fixtures ---

    private static byte[] Model(byte[] graphFields) => [.. Key(1, 0), 7, .. Field(7, graphFields)];

    private static byte[] Tensor(string name, long[] dims, int dataType, byte[] dataFields)
    {
        var body = new List<byte>();
        foreach (long d in dims) body.AddRange([.. Key(1, 0), .. Varint((ulong)d)]);
        body.AddRange([.. Key(2, 0), .. Varint((ulong)dataType)]);
        body.AddRange(Field(8, System.Text.Encoding.UTF8.GetBytes(name)));
        body.AddRange(dataFields);
        return Field(5, [.. body]);
    }

    private static byte[] Bytes(float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    private static byte[] Field(int field, byte[] payload) => [.. Key(field, 2), .. Varint((ulong)payload.Length), .. payload];

    private static byte[] Key(int field, int wire) => Varint((ulong)(field << 3 | wire));

    private static byte[] Varint(ulong v)
    {
        var b = new List<byte>();
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
        return [.. b];
    }
}
