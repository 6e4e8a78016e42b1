using System.Globalization;
using System.Runtime.InteropServices;

namespace EdgeTune.Formats.Onnx;

/// <summary>ONNX element types (TensorProto.DataType) the exporter writes.</summary>
public enum OnnxElementType
{
    Float = 1, Uint8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Float16 = 10, Int4 = 22,
}

/// <summary>One node attribute: an int, a float, a string or a list of ints.</summary>
internal readonly record struct OnnxAttribute(string Name, long? Int = null, float? Float = null, string? Text = null, long[]? Ints = null)
{
    public static OnnxAttribute Of(string name, long value) => new(name, Int: value);
    public static OnnxAttribute Of(string name, float value) => new(name, Float: value);
    public static OnnxAttribute Of(string name, string value) => new(name, Text: value);
    public static OnnxAttribute Of(string name, long[] values) => new(name, Ints: values);
}

/// <summary>
/// Assembles an ONNX model (IR 8, default-domain opset 17 unless raised) node by node and writes it. Field numbers are
/// onnx.proto's: ModelProto ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8,
/// metadata_props 14; GraphProto node 1, name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2,
/// name 3, op_type 4, attribute 5; AttributeProto name 1, f 2, i 3, s 4, ints 8, type 20; TensorProto dims 1,
/// data_type 2, name 8, raw_data 9, external_data 13, data_location 14; ValueInfoProto name 1, type 2;
/// TypeProto.tensor_type 1 {elem_type 1, shape 2}; TensorShapeProto.dim 1 {dim_value 1, dim_param 2}.
/// </summary>
/// <remarks>Large initializers go to one external data file beside the model (as ONNX's own tools save models over 2 GB),
/// each at a 64-byte aligned offset, so the .onnx file stays small and ONNX Runtime can map the weights.</remarks>
internal sealed class OnnxModelBuilder
{
    private const long ExternalThreshold = 1024;

    private sealed record Initializer(string Name, OnnxElementType Type, long[] Dims, long ByteLength, Action<Stream> Write);

    private readonly List<ProtoWriter> _nodes = [];
    private readonly List<Initializer> _initializers = [];
    private readonly List<ProtoWriter> _inputs = [], _outputs = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private int _counter;

    public OnnxModelBuilder(string graphName, int opset = 17)
    {
        GraphName = graphName;
        Opset = opset;
    }

    public string GraphName { get; }
    public int Opset { get; }
    public int NodeCount => _nodes.Count;

    /// <summary>A name not used yet, from <paramref name="hint"/>.</summary>
    public string Fresh(string hint)
    {
        string name = hint;
        while (!_names.Add(name)) name = $"{hint}_{++_counter}";
        return name;
    }

    /// <summary>A graph input; <paramref name="dims"/> are numbers or symbolic names.</summary>
    public string Input(string name, OnnxElementType type, params object[] dims)
    {
        if (!_names.Add(name)) throw new ArgumentException($"ONNX export: the name '{name}' is used twice", nameof(name));
        _inputs.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="name"/> (a node output) a graph output.</summary>
    public void Output(string name, OnnxElementType type, params object[] dims) => _outputs.Add(ValueInfo(name, type, dims));

    public void Metadata(string key, string value) => _metadata[key] = value;

    /// <summary>Adds a node with one output (named from <paramref name="output"/> or the op) and returns the output's name.</summary>
    public string Node(string op, string[] inputs, string? output = null, params OnnxAttribute[] attributes) =>
        NodeN(op, inputs, [output ?? op.ToLowerInvariant()], attributes)[0];

    /// <summary>Adds a node whose outputs are named from <paramref name="outputHints"/> (an exact name when it is free).</summary>
    public string[] NodeN(string op, string[] inputs, string[] outputHints, params OnnxAttribute[] attributes)
    {
        var outs = outputHints.Select(Fresh).ToArray();
        var n = new ProtoWriter();
        foreach (string i in inputs) n.String(1, i);
        foreach (string o in outs) n.String(2, o);
        n.String(3, Fresh($"{op}_{_nodes.Count}"));
        n.String(4, op);
        foreach (var a in attributes) n.Message(5, Attribute(a));
        _nodes.Add(n);
        return outs;
    }

    /// <summary>A reduction (ReduceMean, ReduceL2 ...) over <paramref name="axes"/>: the axes are an attribute before opset 18
    /// and an input from 18 on (ReduceSum's from 13).</summary>
    public string Reduce(string op, string x, long[] axes, bool keepDims, string output)
    {
        bool asInput = Opset >= 18 || op == "ReduceSum";
        var keep = OnnxAttribute.Of("keepdims", keepDims ? 1L : 0L);
        return asInput ? Node(op, [x, Ints(axes)], output, keep) : Node(op, [x], output, OnnxAttribute.Of("axes", axes), keep);
    }

    /// <summary>A named initializer whose <paramref name="byteLength"/> bytes <paramref name="write"/> produces at save time
    /// (little-endian, row-major).</summary>
    public string Initialize(string name, OnnxElementType type, long[] dims, long byteLength, Action<Stream> write)
    {
        string n = Fresh(name);
        _initializers.Add(new Initializer(n, type, dims, byteLength, write));
        return n;
    }

    public string Initialize(string name, float[] values, params long[] dims) =>
        Initialize(name, OnnxElementType.Float, dims, values.Length * 4L, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan())));

    /// <summary>A 1-D int64 constant (shared by every use of the same values).</summary>
    public string Ints(params long[] values)
    {
        string key = "i:" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        var copy = values.ToArray();
        return _constants[key] = Initialize("const_i64", OnnxElementType.Int64, [copy.Length], copy.Length * 8L,
            s => s.Write(MemoryMarshal.AsBytes(copy.AsSpan())));
    }

    /// <summary>A scalar int64 constant (shared by every use of the same value).</summary>
    public string ScalarInt(long value)
    {
        string key = "s:" + value.ToString(CultureInfo.InvariantCulture);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        var v = new[] { value };
        return _constants[key] = Initialize("const_i64", OnnxElementType.Int64, [], 8, s => s.Write(MemoryMarshal.AsBytes(v.AsSpan())));
    }

    /// <summary>A scalar float constant (shared).</summary>
    public string Scalar(float value)
    {
        string key = "f:" + BitConverter.SingleToInt32Bits(value).ToString(CultureInfo.InvariantCulture);
        if (_constants.TryGetValue(key, out var existing)) return existing;
        var v = new[] { value };
        return _constants[key] = Initialize("const_f32", OnnxElementType.Float, [], 4, s => s.Write(MemoryMarshal.AsBytes(v.AsSpan())));
    }

    /// <summary>Writes <paramref name="path"/> and, when any initializer is large, <c>{file name}.data</c> beside it. Both
    /// are written under temporary names and moved into place, so a failed write leaves no half-written model.</summary>
    public void Save(string path, string producerVersion)
    {
        string full = Path.GetFullPath(path);
        string dataName = Path.GetFileName(full) + ".data";
        string dataPath = Path.Combine(Path.GetDirectoryName(full)!, dataName);
        string tmpModel = full + $".tmp-{Guid.NewGuid():N}", tmpData = dataPath + $".tmp-{Guid.NewGuid():N}";
        try
        {
            var graph = new ProtoWriter();
            foreach (var n in _nodes) graph.Message(1, n);
            graph.String(2, GraphName);
            bool external = false;
            using (var data = new FileStream(tmpData, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                foreach (var init in _initializers)
                {
                    var t = new ProtoWriter();
                    t.PackedInts(1, init.Dims);
                    t.Int(2, (int)init.Type);
                    t.String(8, init.Name);
                    if (init.ByteLength >= ExternalThreshold)
                    {
                        external = true;
                        long pad = (64 - data.Position % 64) % 64;
                        if (pad > 0) data.Write(new byte[pad]);
                        long offset = data.Position;
                        init.Write(data);
                        long written = data.Position - offset;
                        if (written != init.ByteLength)
                            throw new InvalidOperationException($"ONNX export: initializer '{init.Name}' wrote {written} bytes, expected {init.ByteLength}");
                        t.Message(13, Entry("location", dataName));
                        t.Message(13, Entry("offset", offset.ToString(CultureInfo.InvariantCulture)));
                        t.Message(13, Entry("length", written.ToString(CultureInfo.InvariantCulture)));
                        t.Int(14, 1); // EXTERNAL
                    }
                    else
                    {
                        using var ms = new MemoryStream();
                        init.Write(ms);
                        if (ms.Length != init.ByteLength)
                            throw new InvalidOperationException($"ONNX export: initializer '{init.Name}' wrote {ms.Length} bytes, expected {init.ByteLength}");
                        t.Bytes(9, ms.GetBuffer().AsSpan(0, (int)ms.Length));
                    }
                    graph.Message(5, t);
                }
            }
            foreach (var i in _inputs) graph.Message(11, i);
            foreach (var o in _outputs) graph.Message(12, o);

            var model = new ProtoWriter();
            model.Int(1, Opset >= 21 ? 10 : 8);
            model.String(2, "EdgeTune");
            model.String(3, producerVersion);
            model.Message(7, graph);
            var opset = new ProtoWriter();
            opset.String(1, "");
            opset.Int(2, Opset);
            model.Message(8, opset);
            foreach (var (k, v) in _metadata) model.Message(14, Entry(k, v));
            using (var f = new FileStream(tmpModel, FileMode.CreateNew, FileAccess.Write))
                f.Write(model.Written);
            if (external) File.Move(tmpData, dataPath, overwrite: true);
            else File.Delete(tmpData);
            File.Move(tmpModel, full, overwrite: true);
        }
        finally
        {
            TryDelete(tmpModel);
            TryDelete(tmpData);
        }
    }

    private static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static ProtoWriter Entry(string key, string value)
    {
        var e = new ProtoWriter();
        e.String(1, key);
        e.String(2, value);
        return e;
    }

    private static ProtoWriter Attribute(OnnxAttribute a)
    {
        var w = new ProtoWriter();
        w.String(1, a.Name);
        if (a.Float is float f) { w.Float(2, f); w.Int(20, 1); }
        else if (a.Int is long i) { w.Int(3, i); w.Int(20, 2); }
        else if (a.Text is string s) { w.String(4, s); w.Int(20, 3); }
        else if (a.Ints is long[] ints) { foreach (long v in ints) w.Int(8, v); w.Int(20, 7); }
        else throw new ArgumentException($"ONNX export: attribute '{a.Name}' has no value");
        return w;
    }

    private static ProtoWriter ValueInfo(string name, OnnxElementType type, object[] dims)
    {
        var shape = new ProtoWriter();
        foreach (var d in dims)
        {
            var dim = new ProtoWriter();
            switch (d)
            {
                case int n: dim.Int(1, n); break;
                case long n: dim.Int(1, n); break;
                case string p: dim.String(2, p); break;
                default: throw new ArgumentException($"ONNX export: dimension {d} of '{name}' is neither a number nor a name");
            }
            shape.Message(1, dim);
        }
        var tensor = new ProtoWriter();
        tensor.Int(1, (int)type);
        tensor.Message(2, shape);
        var typeProto = new ProtoWriter();
        typeProto.Message(1, tensor);
        var vi = new ProtoWriter();
        vi.String(1, name);
        vi.Message(2, typeProto);
        return vi;
    }
}
