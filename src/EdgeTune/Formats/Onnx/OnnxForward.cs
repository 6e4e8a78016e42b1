using System.Runtime.InteropServices;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Tensors.Quantized;

namespace EdgeTune.Formats.Onnx;

/// <summary>A value of the exported graph: the name of a float tensor (B, T, <see cref="Cols"/>).</summary>
public readonly record struct OnnxValue(string Name, int Cols);

/// <summary>How exported projection weights are stored.</summary>
public enum OnnxWeightFormat
{
    /// <summary>F32 weights, MatMul on floats.</summary>
    Float32,
    /// <summary>Int8 weights with one F32 scale per output channel (symmetric), DequantizeLinear → MatMul (QDQ): the form
    /// ONNX Runtime's CPU provider and NPU providers (QNN, OpenVINO, DirectML) recognise and run as integer matmuls.</summary>
    Int8,
    /// <summary>Int4 weights in blocks of <see cref="OnnxForward.Int4Block"/> input rows, one F32 scale per block and output
    /// channel (symmetric), blocked DequantizeLinear → MatMul; needs opset 21 (ONNX Runtime 1.20+).</summary>
    Int4,
}

/// <summary>
/// <see cref="IForward{TX}"/> that writes ONNX nodes instead of computing: a family's block, written once, becomes a
/// graph. Values are (B, T, W) float tensors; positions, masks and past keys/values come from the exporter (graph
/// inputs), and attention concatenates past and new keys/values into the layer's <c>present.{i}.key/value</c> outputs.
/// </summary>
/// <remarks>Legend: B batch, T new tokens, P past tokens, S = P + T, C hidden, H heads (Hq, Hkv), D head size, R rotary dims.</remarks>
internal sealed class OnnxForward : IForward<OnnxValue>
{
    private readonly OnnxModelBuilder _g;
    private readonly OnnxWeightFormat _format;
    private readonly string _positions, _totalLength;
    private readonly Func<int, (string Key, string Value)> _past;
    private readonly Dictionary<object, string> _weights = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<RopeTable, (string Cos, string Sin)> _rope = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(int Window, int Repeat), string> _masks = [];
    private string? _qpos, _kpos;
    private readonly int _maxPositions;

    /// <param name="positions">int64 [T]: absolute positions of the new tokens.</param>
    /// <param name="totalLength">int64 scalar S = P + T.</param>
    /// <param name="past">The graph inputs holding layer i's past keys and values, (B, Hkv, P, D).</param>
    /// <param name="maxPositions">Rows of the exported rotary tables.</param>
    public OnnxForward(OnnxModelBuilder graph, OnnxWeightFormat format, string positions, string totalLength,
        Func<int, (string Key, string Value)> past, int maxPositions)
    {
        (_g, _format, _positions, _totalLength, _past, _maxPositions) = (graph, format, positions, totalLength, past, maxPositions);
        Presents = [];
    }

    /// <summary>For graphs without rotary positions or a KV cache (encoders): only the weight-level operations
    /// (<see cref="Linear"/>, <see cref="Vector"/>, <see cref="Slice"/>, elementwise ops) are used.</summary>
    public OnnxForward(OnnxModelBuilder graph, OnnxWeightFormat format)
        : this(graph, format, "", "", _ => throw new InvalidOperationException("this graph has no KV cache"), 0) { }

    /// <summary>present.{i}.key/value output names, by layer.</summary>
    public SortedDictionary<int, (string Key, string Value)> Presents { get; }

    /// <summary>The largest |w − dequantized w| over every exported int8 weight (0 for F32).</summary>
    public double MaxWeightError { get; private set; }

    public OnnxValue Linear(ILinear layer, OnnxValue x)
    {
        var (wt, bias) = LinearWeights(layer);
        string y = _g.Node("MatMul", [x.Name, wt], Short(layer.Name) + ".out");
        if (bias is not null) y = _g.Node("Add", [y, bias], Short(layer.Name) + ".biased");
        return new OnnxValue(y, layer.OutFeatures);
    }

    public OnnxValue RmsNorm(OnnxValue x, Parameter weight, double eps)
    {
        int len = checked((int)weight.Value.ElementCount);
        string w = Vector(weight);
        string input = x.Name;
        bool grouped = len != x.Cols;
        if (grouped) input = _g.Node("Reshape", [input, _g.Ints(0, 0, x.Cols / len, len)], "grouped");
        string sq = _g.Node("Mul", [input, input], "sq");
        string mean = _g.Reduce("ReduceMean", sq, [-1], keepDims: true, "ms");
        string rstd = _g.Node("Reciprocal", [_g.Node("Sqrt", [_g.Node("Add", [mean, _g.Scalar((float)eps)], "ms_eps")], "rms")], "rstd");
        string y = _g.Node("Mul", [_g.Node("Mul", [input, rstd], "normed"), w], "scaled");
        if (grouped) y = _g.Node("Reshape", [y, _g.Ints(0, 0, x.Cols)], "ungrouped");
        return new OnnxValue(y, x.Cols);
    }

    public OnnxValue Rope(OnnxValue x, int heads, int headDim, RopeTable table, RopeStyle style)
    {
        var (cosTable, sinTable) = RopeTables(table);
        int pairs = table.Pairs, rot = 2 * pairs;
        string x4 = _g.Node("Reshape", [x.Name, _g.Ints(0, 0, heads, headDim)], "heads");
        string cos = _g.Node("Gather", [cosTable, _positions], "cos", OnnxAttribute.Of("axis", 0L)); // [T, R/2]
        string sin = _g.Node("Gather", [sinTable, _positions], "sin", OnnxAttribute.Of("axis", 0L));
        string rotated;
        if (style == RopeStyle.HalfSplit)
        {
            cos = _g.Node("Unsqueeze", [cos, _g.Ints(1)], "cos_t1p"); // [T, 1, R/2] against (B, T, H, R/2)
            sin = _g.Node("Unsqueeze", [sin, _g.Ints(1)], "sin_t1p");
            string a = Slice(x4, 0, pairs, 3), b = Slice(x4, pairs, rot, 3);
            string ya = _g.Node("Sub", [_g.Node("Mul", [a, cos]), _g.Node("Mul", [b, sin])], "rope_a");
            string yb = _g.Node("Add", [_g.Node("Mul", [b, cos]), _g.Node("Mul", [a, sin])], "rope_b");
            rotated = _g.Node("Concat", [ya, yb], "rope_ab", OnnxAttribute.Of("axis", 3L));
        }
        else
        {
            cos = _g.Node("Unsqueeze", [cos, _g.Ints(1, 3)], "cos_t1p1"); // [T, 1, R/2, 1] against (B, T, H, R/2, 1)
            sin = _g.Node("Unsqueeze", [sin, _g.Ints(1, 3)], "sin_t1p1");
            string pairsOf = _g.Node("Reshape", [Slice(x4, 0, rot, 3), _g.Ints(0, 0, heads, pairs, 2)], "pairs");
            string a = Slice(pairsOf, 0, 1, 4), b = Slice(pairsOf, 1, 2, 4);
            string ya = _g.Node("Sub", [_g.Node("Mul", [a, cos]), _g.Node("Mul", [b, sin])], "rope_even");
            string yb = _g.Node("Add", [_g.Node("Mul", [b, cos]), _g.Node("Mul", [a, sin])], "rope_odd");
            string both = _g.Node("Concat", [ya, yb], "rope_pairs", OnnxAttribute.Of("axis", 4L));
            rotated = _g.Node("Reshape", [both, _g.Ints(0, 0, heads, rot)], "rope_interleaved");
        }
        if (rot < headDim)
            rotated = _g.Node("Concat", [rotated, Slice(x4, rot, headDim, 3)], "rope_partial", OnnxAttribute.Of("axis", 3L));
        return new OnnxValue(_g.Node("Reshape", [rotated, _g.Ints(0, 0, heads * headDim)], "roped"), x.Cols);
    }

    public OnnxValue Attention(OnnxValue q, OnnxValue k, OnnxValue v, in AttentionSpec s)
    {
        int d = s.HeadDim, g = s.HeadsQ / s.HeadsKv;
        string l = $"layers.{s.Layer}.attn";
        string Heads(string x, int h, string what) =>
            _g.Node("Transpose", [_g.Node("Reshape", [x, _g.Ints(0, 0, h, d)], $"{l}.{what}4")], $"{l}.{what}_bhtd", OnnxAttribute.Of("perm", new long[] { 0, 2, 1, 3 }));
        string q4 = Heads(q.Name, s.HeadsQ, "q"), k4 = Heads(k.Name, s.HeadsKv, "k"), v4 = Heads(v.Name, s.HeadsKv, "v");
        var (pastK, pastV) = _past(s.Layer);
        string keys = _g.Node("Concat", [pastK, k4], $"present.{s.Layer}.key", OnnxAttribute.Of("axis", 2L));
        string values = _g.Node("Concat", [pastV, v4], $"present.{s.Layer}.value", OnnxAttribute.Of("axis", 2L));
        Presents[s.Layer] = (keys, values);
        // Each kv head serves g query heads: fold them into the row axis, (B, Hkv, g·T, D), so no key is copied.
        string qg = _g.Node("Reshape", [q4, _g.Ints(0, s.HeadsKv, -1, d)], $"{l}.q_grouped");
        string kt = _g.Node("Transpose", [keys], $"{l}.kT", OnnxAttribute.Of("perm", new long[] { 0, 1, 3, 2 }));
        string scores = _g.Node("Mul", [_g.Node("MatMul", [qg, kt], $"{l}.qk"), _g.Scalar((float)s.Scale)], $"{l}.scores");
        string masked = _g.Node("Add", [scores, Mask(s.Window, g)], $"{l}.masked");
        string p = _g.Node("Softmax", [masked], $"{l}.probs", OnnxAttribute.Of("axis", -1L));
        string o = _g.Node("MatMul", [p, values], $"{l}.pv");
        string o4 = _g.Node("Transpose", [_g.Node("Reshape", [o, _g.Ints(0, s.HeadsQ, -1, d)], $"{l}.o_bhtd")], $"{l}.o_bthd",
            OnnxAttribute.Of("perm", new long[] { 0, 2, 1, 3 }));
        return new OnnxValue(_g.Node("Reshape", [o4, _g.Ints(0, 0, s.HeadsQ * d)], $"{l}.out"), s.HeadsQ * d);
    }

    public OnnxValue Add(OnnxValue a, OnnxValue b) => new(_g.Node("Add", [a.Name, b.Name], "residual"), a.Cols);

    public OnnxValue SwiGlu(OnnxValue gate, OnnxValue up)
    {
        string silu = _g.Node("Mul", [gate.Name, _g.Node("Sigmoid", [gate.Name], "sig")], "silu");
        return new OnnxValue(_g.Node("Mul", [silu, up.Name], "swiglu"), gate.Cols);
    }

    public OnnxValue GeGlu(OnnxValue gate, OnnxValue up)
    {
        // tanh-GELU written out (the Gelu op with approximate="tanh" needs opset 20): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        string x = gate.Name;
        string cube = _g.Node("Mul", [_g.Node("Mul", [x, x], "x2"), x], "x3");
        string inner = _g.Node("Mul", [_g.Node("Add", [x, _g.Node("Mul", [cube, _g.Scalar(0.044715f)], "cx3")], "x_cx3"),
            _g.Scalar((float)Math.Sqrt(2.0 / Math.PI))], "gelu_arg");
        string half = _g.Node("Mul", [x, _g.Scalar(0.5f)], "half_x");
        string gelu = _g.Node("Mul", [half, _g.Node("Add", [_g.Node("Tanh", [inner], "tanh"), _g.Scalar(1f)], "one_tanh")], "gelu");
        return new OnnxValue(_g.Node("Mul", [gelu, up.Name], "geglu"), gate.Cols);
    }

    public OnnxValue Columns(OnnxValue x, int start, int count) => new(Slice(x.Name, start, start + count, 2), count);

    public OnnxValue Scale(OnnxValue x, double s) => new(_g.Node("Mul", [x.Name, _g.Scalar((float)s)], "scaled"), x.Cols);

    /// <summary>A float table of <paramref name="p"/> as it is stored (a vector, or a [V, C] embedding), F32.</summary>
    public string Vector(Parameter p)
    {
        if (_weights.TryGetValue(p, out var name)) return name;
        var t = p.Value;
        var dims = Enumerable.Range(0, t.Rank).Select(i => (long)t.Dim(i)).ToArray();
        return _weights[p] = _g.Initialize(p.Name, OnnxElementType.Float, dims, t.ElementCount * 4, s => WriteFloats(s, t));
    }

    /// <summary>Slices [start, end) of <paramref name="x"/> along <paramref name="axis"/>.</summary>
    public string Slice(string x, int start, int end, int axis) =>
        _g.Node("Slice", [x, _g.Ints(start), _g.Ints(end), _g.Ints(axis)], "slice");

    private static string Short(string name) => name.StartsWith("model.", StringComparison.Ordinal) ? name[6..] : name;

    private (string Wt, string? Bias) LinearWeights(ILinear layer)
    {
        if (_weights.TryGetValue(layer, out var wt))
            return (wt, _weights.TryGetValue((layer, "bias"), out var cached) ? cached : null);
        int fin = layer.InFeatures, fout = layer.OutFeatures;
        float[] transposed = DenseTransposed(layer, out float[]? bias);
        string n = Short(layer.Name);
        if (_format == OnnxWeightFormat.Float32)
            wt = _g.Initialize(layer.Name + ".weight_t", transposed, fin, fout);
        else if (_format == OnnxWeightFormat.Int4)
        {
            var (packed, scale, err) = QuantizeInt4Blocks(transposed, fin, fout);
            MaxWeightError = Math.Max(MaxWeightError, err);
            int blocks = (fin + Int4Block - 1) / Int4Block;
            string qw = _g.Initialize(layer.Name + ".weight_t_int4", OnnxElementType.Int4, [fin, fout], packed.Length, st => st.Write(packed));
            string sc = _g.Initialize(layer.Name + ".weight_scale", scale, blocks, fout);
            var zeros = new byte[((long)blocks * fout + 1) / 2];
            string zp = _g.Initialize(layer.Name + ".weight_zero_point", OnnxElementType.Int4, [blocks, fout], zeros.Length, st => st.Write(zeros));
            wt = _g.Node("DequantizeLinear", [qw, sc, zp], n + ".weight_t", OnnxAttribute.Of("axis", 0L), OnnxAttribute.Of("block_size", (long)Int4Block));
        }
        else
        {
            var (q, scale, err) = QuantizeInt8PerColumn(transposed, fin, fout);
            MaxWeightError = Math.Max(MaxWeightError, err);
            string qw = _g.Initialize(layer.Name + ".weight_t_int8", OnnxElementType.Int8, [fin, fout], q.Length, st => st.Write(MemoryMarshal.AsBytes(q.AsSpan())));
            string sc = _g.Initialize(layer.Name + ".weight_scale", scale, fout);
            var zeros = new sbyte[fout];
            string zp = _g.Initialize(layer.Name + ".weight_zero_point", OnnxElementType.Int8, [fout], fout, st => st.Write(MemoryMarshal.AsBytes(zeros.AsSpan())));
            wt = _g.Node("DequantizeLinear", [qw, sc, zp], n + ".weight_t", OnnxAttribute.Of("axis", 1L));
        }
        _weights[layer] = wt;
        string? b = null;
        if (bias is not null) _weights[(layer, "bias")] = b = _g.Initialize(layer.Name + ".bias", bias, fout);
        return (wt, b);
    }

    /// <summary>Wᵀ (in, out) of any projection: a plain <see cref="Nn.Linear"/>'s stored weight, or — for adapters and
    /// quantized layers — read back by running the layer on the identity (so what is exported is exactly what the
    /// layer computes: LoRA merged, quantized weights dequantized).</summary>
    private static float[] DenseTransposed(ILinear layer, out float[]? bias)
    {
        int fin = layer.InFeatures, fout = layer.OutFeatures;
        var wt = new float[(long)fin * fout];
        if (layer is Nn.Linear plain && plain.Weight.Value.DType == DType.F32)
        {
            var w = plain.Weight.Value.ReadOnlySpan<float>();
            for (int o = 0; o < fout; o++)
                for (int i = 0; i < fin; i++) wt[(long)i * fout + o] = w[o * fin + i];
            bias = plain.Bias?.Value.ReadOnlySpan<float>().ToArray();
            return wt;
        }
        var zero = new float[fin];
        var b = new float[fout];
        layer.Forward(zero, b, 1);
        bool hasBias = b.Any(v => v != 0);
        const int Rows = 64;
        var eye = new float[Rows * fin];
        var y = new float[Rows * fout];
        for (int r0 = 0; r0 < fin; r0 += Rows)
        {
            int rows = Math.Min(Rows, fin - r0);
            Array.Clear(eye);
            for (int r = 0; r < rows; r++) eye[r * fin + r0 + r] = 1f;
            layer.Forward(eye.AsSpan(0, rows * fin), y.AsSpan(0, rows * fout), rows);
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < fout; o++) wt[(long)(r0 + r) * fout + o] = y[r * fout + o] - b[o];
        }
        bias = hasBias ? b : null;
        return wt;
    }

    /// <summary>Symmetric int8 per output column: scale = max|w|/127, q = round(w/scale). Returns the worst |w − q·scale|.</summary>
    internal static (sbyte[] Q, float[] Scale, double MaxError) QuantizeInt8PerColumn(float[] wt, int rows, int cols)
    {
        var scale = new float[cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) scale[c] = Math.Max(scale[c], Math.Abs(wt[(long)r * cols + c]));
        for (int c = 0; c < cols; c++) scale[c] = scale[c] > 0 ? scale[c] / 127f : 1f;
        var q = new sbyte[wt.Length];
        double err = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                long i = (long)r * cols + c;
                float v = Math.Clamp(MathF.Round(wt[i] / scale[c], MidpointRounding.ToEven), -127f, 127f);
                q[i] = (sbyte)v;
                err = Math.Max(err, Math.Abs(wt[i] - v * scale[c]));
            }
        return (q, scale, err);
    }

    /// <summary>Input rows per int4 scale block.</summary>
    public const int Int4Block = 32;

    /// <summary>Symmetric int4 in blocks of <see cref="Int4Block"/> rows per column: scale = max|w|/7, q = round(w/scale) in
    /// [−8, 7], packed two per byte in row-major order, the first element in the low nibble (ONNX's int4 layout). Returns the
    /// worst |w − q·scale|.</summary>
    internal static (byte[] Packed, float[] Scale, double MaxError) QuantizeInt4Blocks(float[] wt, int rows, int cols)
    {
        int blocks = (rows + Int4Block - 1) / Int4Block;
        var scale = new float[blocks * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int s = r / Int4Block * cols + c;
                scale[s] = Math.Max(scale[s], Math.Abs(wt[(long)r * cols + c]));
            }
        for (int i = 0; i < scale.Length; i++) scale[i] = scale[i] > 0 ? scale[i] / 7f : 1f;
        var packed = new byte[(wt.LongLength + 1) / 2];
        double err = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                long i = (long)r * cols + c;
                float sc = scale[r / Int4Block * cols + c];
                int q = (int)Math.Clamp(MathF.Round(wt[i] / sc, MidpointRounding.ToEven), -8f, 7f);
                err = Math.Max(err, Math.Abs(wt[i] - q * sc));
                packed[i / 2] |= (byte)((q & 0xF) << (int)(4 * (i % 2)));
            }
        return (packed, scale, err);
    }

    private (string Cos, string Sin) RopeTables(RopeTable table)
    {
        if (_rope.TryGetValue(table, out var known)) return known;
        int positions = Math.Min(table.MaxPositions, _maxPositions), pairs = table.Pairs;
        var cos = new float[positions * pairs];
        var sin = new float[positions * pairs];
        for (int p = 0; p < positions; p++)
        {
            table.Cos(p).CopyTo(cos.AsSpan(p * pairs));
            table.Sin(p).CopyTo(sin.AsSpan(p * pairs));
        }
        var names = (_g.Initialize("rope.cos", cos, positions, pairs), _g.Initialize("rope.sin", sin, positions, pairs));
        _rope[table] = names;
        return names;
    }

    /// <summary>The additive mask (g·T, S): 0 where new token t (position P+t) may see key j (j ≤ P+t, and P+t − j &lt; window
    /// when there is one), −∞ elsewhere; repeated g times along the rows to match the grouped queries.</summary>
    private string Mask(int window, int repeat)
    {
        if (_masks.TryGetValue((window, repeat), out var m)) return m;
        // query positions [T, 1] and key positions [1, S], built once and shared by every mask
        string qpos = _qpos ??= _g.Node("Unsqueeze", [_positions, _g.Ints(1)], "qpos");
        string kpos = _kpos ??= _g.Node("Unsqueeze", [_g.Node("Range", [_g.ScalarInt(0), _totalLength, _g.ScalarInt(1)], "kpos_s"), _g.Ints(0)], "kpos");
        string allowed = _g.Node("LessOrEqual", [kpos, qpos], "causal");
        if (window > 0)
        {
            string lo = _g.Node("Sub", [qpos, _g.ScalarInt(window)], "window_lo");
            allowed = _g.Node("And", [allowed, _g.Node("Greater", [kpos, lo], "in_window")], "windowed");
        }
        string mask = _g.Node("Where", [allowed, _g.Scalar(0f), _g.Scalar(float.NegativeInfinity)], $"mask_w{window}");
        if (repeat > 1) mask = _g.Node("Tile", [mask, _g.Ints(repeat, 1)], $"mask_w{window}_g{repeat}");
        return _masks[(window, repeat)] = mask;
    }

    /// <summary>Writes a tensor's values as little-endian F32 (dequantizing or widening stored types).</summary>
    internal static void WriteFloats(Stream s, Tensor t)
    {
        if (t.DType == DType.F32)
        {
            s.Write(MemoryMarshal.AsBytes(t.ReadOnlySpan<float>()));
            return;
        }
        using var f = t.DType.IsBlockQuantized() ? GgufQuant.ToFloat32(t) : t.To(DType.F32);
        s.Write(MemoryMarshal.AsBytes(f.ReadOnlySpan<float>()));
    }
}
