using System.Runtime.InteropServices;
using EdgeTune.Tensors;

namespace EdgeTune.Formats.Onnx;

/// <summary>
/// The parts of an ONNX model file that loading weights needs: the graph's initializers (named constant
/// tensors, where exporters put the weights) and its node list (to learn what an initializer with an
/// exporter-generated name feeds). Parsed straight from the protobuf wire format by the field numbers of
/// onnx.proto: ModelProto.graph = 7; GraphProto.node = 1, initializer = 5, input = 11, output = 12;
/// NodeProto.input = 1, output = 2, name = 3, op_type = 4; ValueInfoProto.name = 1.
/// </summary>
/// <remarks>The file is read into memory once; raw initializer bytes are copied out only when a tensor is made.</remarks>
public sealed class OnnxGraph
{
    private readonly Dictionary<string, OnnxInitializer> _byName;

    private OnnxGraph(string source, List<OnnxInitializer> initializers, List<OnnxNode> nodes, List<string> inputs, List<string> outputs)
    {
        Source = source;
        Initializers = initializers;
        Nodes = nodes;
        Inputs = inputs;
        Outputs = outputs;
        _byName = new Dictionary<string, OnnxInitializer>(StringComparer.Ordinal);
        foreach (var i in initializers) _byName[i.Name] = i;
    }

    /// <summary>The file (or description) the graph came from, named in errors.</summary>
    public string Source { get; }

    /// <summary>Initializers in file order.</summary>
    public IReadOnlyList<OnnxInitializer> Initializers { get; }

    /// <summary>Nodes in file order (ONNX requires topological order).</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>Names of the graph inputs (may include initializers in old IR versions).</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>Names of the graph outputs.</summary>
    public IReadOnlyList<string> Outputs { get; }

    public bool TryGetInitializer(string name, out OnnxInitializer initializer) => _byName.TryGetValue(name, out initializer!);

    /// <exception cref="CheckpointFormatException">No initializer has that name.</exception>
    public OnnxInitializer Initializer(string name) =>
        _byName.TryGetValue(name, out var i) ? i : throw new CheckpointFormatException(Source, $"no initializer named '{name}'", name);

    /// <summary>Reads an .onnx file.</summary>
    public static OnnxGraph Read(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Reads an ONNX model from a stream (e.g. an embedded resource).</summary>
    public static OnnxGraph Read(Stream stream, string source)
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return Parse(ms.ToArray(), source);
    }

    /// <summary>Parses the bytes of a serialized ModelProto; the graph keeps <paramref name="model"/> (it is not copied).</summary>
    public static OnnxGraph Parse(byte[] model, string source)
    {
        var initializers = new List<OnnxInitializer>();
        var nodes = new List<OnnxNode>();
        var inputs = new List<string>();
        var outputs = new List<string>();
        bool sawGraph = false;

        var m = new ProtoWire(model, 0, source);
        while (m.Next(out int field, out int wire))
        {
            if (field != 7 || wire != ProtoWire.LengthDelimited) { m.Skip(wire); continue; }
            sawGraph = true;
            var gBytes = m.ReadBytes(out int gOff);
            var g = new ProtoWire(gBytes, gOff, source);
            while (g.Next(out int gf, out int gw))
            {
                if (gw != ProtoWire.LengthDelimited) { g.Skip(gw); continue; }
                switch (gf)
                {
                    case 1: nodes.Add(ParseNode(g.ReadBytes(out int nOff), nOff, source)); break;
                    case 5: initializers.Add(ParseTensor(model, g.ReadBytes(out int tOff), tOff, source)); break;
                    case 11: inputs.Add(ParseValueInfoName(g.ReadBytes(out int iOff), iOff, source)); break;
                    case 12: outputs.Add(ParseValueInfoName(g.ReadBytes(out int oOff), oOff, source)); break;
                    default: g.Skip(gw); break;
                }
            }
        }
        if (!sawGraph) throw new CheckpointFormatException(source, "not an ONNX model: no graph (ModelProto field 7)");
        return new OnnxGraph(source, initializers, nodes, inputs, outputs);
    }

    private static OnnxNode ParseNode(ReadOnlySpan<byte> bytes, int offset, string source)
    {
        var r = new ProtoWire(bytes, offset, source);
        var ins = new List<string>();
        var outs = new List<string>();
        string name = "", op = "";
        while (r.Next(out int f, out int w))
        {
            if (w != ProtoWire.LengthDelimited) { r.Skip(w); continue; }
            switch (f)
            {
                case 1: ins.Add(r.ReadString()); break;
                case 2: outs.Add(r.ReadString()); break;
                case 3: name = r.ReadString(); break;
                case 4: op = r.ReadString(); break;
                default: r.Skip(w); break;
            }
        }
        return new OnnxNode(name, op, ins, outs);
    }

    private static string ParseValueInfoName(ReadOnlySpan<byte> bytes, int offset, string source)
    {
        var r = new ProtoWire(bytes, offset, source);
        while (r.Next(out int f, out int w))
        {
            if (f == 1 && w == ProtoWire.LengthDelimited) return r.ReadString();
            r.Skip(w);
        }
        return "";
    }

    // TensorProto: dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9, data_location = 14.
    private static OnnxInitializer ParseTensor(byte[] model, ReadOnlySpan<byte> bytes, int offset, string source)
    {
        var r = new ProtoWire(bytes, offset, source);
        var dims = new List<long>();
        int dataType = 0, dataLocation = 0, rawOffset = -1, rawLength = 0;
        string name = "";
        List<float>? floats = null;
        while (r.Next(out int f, out int w))
        {
            switch (f, w)
            {
                case (1, ProtoWire.Varint): dims.Add((long)r.ReadVarint()); break;
                case (1, ProtoWire.LengthDelimited):
                    {
                        var packed = new ProtoWire(r.ReadBytes(out int pOff), pOff, source);
                        while (!packed.AtEnd) dims.Add((long)packed.ReadVarint());
                        break;
                    }
                case (2, ProtoWire.Varint): dataType = (int)r.ReadVarint(); break;
                case (4, ProtoWire.Fixed32): (floats ??= []).Add(BitConverter.UInt32BitsToSingle(r.ReadFixed32())); break;
                case (4, ProtoWire.LengthDelimited):
                    {
                        var packed = r.ReadBytes(out _);
                        if (packed.Length % 4 != 0) throw new CheckpointFormatException(source, $"packed float_data of {packed.Length} bytes is not whole floats");
                        (floats ??= []).AddRange(MemoryMarshal.Cast<byte, float>(packed).ToArray());
                        break;
                    }
                case (8, ProtoWire.LengthDelimited): name = r.ReadString(); break;
                case (9, ProtoWire.LengthDelimited): rawLength = r.ReadBytes(out rawOffset).Length; break;
                case (14, ProtoWire.Varint): dataLocation = (int)r.ReadVarint(); break;
                default: r.Skip(w); break;
            }
        }
        return new OnnxInitializer(source, name, [.. dims], dataType, dataLocation == 1, model, rawOffset, rawLength, floats?.ToArray());
    }
}

/// <summary>One graph node: its op, and the names of the values it reads and writes.</summary>
public sealed record OnnxNode(string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>
/// One initializer (an ONNX TensorProto): name, dims and element type, with its data still in the
/// file's bytes. Only float32 data becomes a <see cref="Tensor"/>; other types are refused by name.
/// </summary>
public sealed class OnnxInitializer
{
    private readonly string _source;
    private readonly byte[] _model;
    private readonly int _rawOffset, _rawLength;
    private readonly float[]? _floatData;
    private readonly bool _external;

    internal OnnxInitializer(string source, string name, long[] dims, int dataType, bool external, byte[] model, int rawOffset, int rawLength, float[]? floatData)
    {
        _source = source;
        Name = name;
        Dims = dims;
        DataType = dataType;
        _external = external;
        _model = model;
        _rawOffset = rawOffset;
        _rawLength = rawLength;
        _floatData = floatData;
    }

    public string Name { get; }

    /// <summary>The shape; empty for a scalar.</summary>
    public IReadOnlyList<long> Dims { get; }

    /// <summary>The TensorProto.DataType code (1 = FLOAT).</summary>
    public int DataType { get; }

    /// <summary>The ONNX name of <see cref="DataType"/>, e.g. FLOAT, INT64, FLOAT16.</summary>
    public string DataTypeName => OnnxDataType.Name(DataType);

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dims) n = checked(n * d);
            return n;
        }
    }

    /// <summary>The values, for a float32 initializer stored in raw_data or float_data.</summary>
    /// <exception cref="CheckpointFormatException">Another element type, external data, or a data size that does not match the dims.</exception>
    public float[] ToFloatArray()
    {
        if (DataType != OnnxDataType.Float)
            throw new CheckpointFormatException(_source, $"initializer '{Name}' holds {DataTypeName}; only FLOAT (float32) initializers can be read", Name);
        if (_external)
            throw new CheckpointFormatException(_source, $"initializer '{Name}' keeps its data in an external file, which is not supported", Name);
        long n = ElementCount;
        if (_rawOffset >= 0)
        {
            if (_rawLength != n * sizeof(float))
                throw new CheckpointFormatException(_source, $"initializer '{Name}': raw_data has {_rawLength} bytes, dims [{string.Join(", ", Dims)}] need {n * sizeof(float)}", Name);
            var result = new float[n];
            MemoryMarshal.Cast<byte, float>(_model.AsSpan(_rawOffset, _rawLength)).CopyTo(result);
            if (!BitConverter.IsLittleEndian)
                throw new PlatformNotSupportedException("ONNX raw_data is little-endian; big-endian hosts are not supported");
            return result;
        }
        var fd = _floatData ?? [];
        if (fd.Length != n)
            throw new CheckpointFormatException(_source, $"initializer '{Name}': float_data has {fd.Length} values, dims [{string.Join(", ", Dims)}] need {n}", Name);
        return (float[])fd.Clone();
    }

    /// <summary>A new owning F32 tensor named <see cref="Name"/> with the initializer's shape.</summary>
    public Tensor ToTensor()
    {
        float[] data = ToFloatArray();
        int[] shape = Dims.Count == 0 ? [1] : Dims.Select(d => checked((int)d)).ToArray();
        return Tensor.From<float>(data, shape, Name);
    }

    public override string ToString() => $"{Name} {DataTypeName}[{string.Join(", ", Dims)}]";
}

/// <summary>ONNX TensorProto.DataType codes (onnx.proto).</summary>
public static class OnnxDataType
{
    public const int Float = 1;

    private static readonly string[] Names =
    [
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16",
        "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
        "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1",
    ];

    public static string Name(int code) => code >= 0 && code < Names.Length ? Names[code] : $"data type {code}";
}
