using EdgeTune.Formats;
using EdgeTune.Formats.Onnx;

namespace EdgeTune.Models.Bert;

/// <summary>
/// Reads a BERT encoder's weights out of an exported ONNX graph (e.g. sentence-transformers' all-MiniLM-L6-v2
/// model.onnx). Exporters keep biases, embeddings and LayerNorm parameters under their transformers names, but
/// fold each linear weight into a MatMul initializer with a generated name (<c>927</c>, <c>onnx::MatMul_1234</c>)
/// stored [in, out]. Such a weight is named here after the bias its MatMul's output is added to
/// (<c>…query.bias</c> → <c>…query.weight</c>) and transposed to [out, in].
/// </summary>
public static class BertOnnx
{
    /// <summary>The float32 parameters under transformers names (<c>bert.</c> prefix removed), linear weights [out, in].</summary>
    /// <exception cref="CheckpointFormatException">A MatMul weight is not 2-D or two MatMuls resolve to one name.</exception>
    public static Dictionary<string, float[]> Parameters(OnnxGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var init in graph.Initializers)
            if (init.DataType == OnnxDataType.Float && init.Name.Contains('.'))
                result[Canonical(init.Name)] = init.ToFloatArray();

        // Which node reads each value, to follow a MatMul's output into its bias Add.
        var readers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
            foreach (var input in node.Inputs)
            {
                if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                list.Add(node);
            }

        foreach (var node in graph.Nodes)
        {
            if (node.OpType != "MatMul" || node.Inputs.Count != 2 || node.Outputs.Count != 1) continue;
            if (!graph.TryGetInitializer(node.Inputs[1], out var weight) || weight.DataType != OnnxDataType.Float) continue;
            if (!readers.TryGetValue(node.Outputs[0], out var consumers)) continue;
            string? bias = null;
            foreach (var add in consumers)
            {
                if (add.OpType != "Add") continue;
                foreach (var other in add.Inputs)
                    if (other != node.Outputs[0] && other.EndsWith(".bias", StringComparison.Ordinal) && graph.TryGetInitializer(other, out _))
                        bias = other;
            }
            if (bias is null) continue;
            if (weight.Dims.Count != 2)
                throw new CheckpointFormatException(graph.Source, $"MatMul weight '{weight.Name}' for '{bias}' is {weight.Dims.Count}-D, expected [in, out]", weight.Name);
            string name = Canonical(bias[..^".bias".Length] + ".weight");
            if (!result.TryAdd(name, Transpose(weight.ToFloatArray(), (int)weight.Dims[0], (int)weight.Dims[1])))
                throw new CheckpointFormatException(graph.Source, $"two weights resolve to '{name}' (one is MatMul initializer '{weight.Name}')", weight.Name);
        }
        return result;
    }

    /// <summary>An encoder from the graph's weights; the sizes not given by <paramref name="config"/> are checked against the tensors.</summary>
    public static BertEncoder Load(OnnxGraph graph, BertConfig config)
    {
        var p = Parameters(graph);
        BertNames.AddMissingTokenTypes(p);
        return new(config, p);
    }

    /// <summary>An encoder from the graph's weights with the config their shapes imply (<see cref="BertConfig.Infer"/>);
    /// the head count, which no weight shows, is <paramref name="heads"/> (all-MiniLM-L6-v2: 12).</summary>
    public static BertEncoder Load(OnnxGraph graph, int heads)
    {
        var p = Parameters(graph);
        BertNames.AddMissingTokenTypes(p);
        return new(BertConfig.Infer(p, heads, graph.Source), p);
    }

    private static string Canonical(string name) => BertNames.Canonical(name);

    /// <summary>[rows, cols] → [cols, rows].</summary>
    private static float[] Transpose(float[] a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                t[c * rows + r] = a[r * cols + c];
        return t;
    }
}
