using System.Globalization;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Formats.Export;

/// <summary>
/// Exports a BERT-style encoder (MiniLM, all-MiniLM, fine-tuned ones: adapters are read back through their own forward,
/// so they are merged) as an ONNX graph for ONNX Runtime and its NPU/GPU providers. Inputs <c>input_ids</c>,
/// <c>attention_mask</c>, <c>token_type_ids</c> (int64, batch × sequence) as transformers' exports name them; outputs
/// <c>last_hidden_state</c> (batch, sequence, hidden) and <c>sentence_embedding</c> (batch, hidden): the encoder's
/// <see cref="BertEncoder.Pooling"/> (the mean over attended tokens or the [CLS] row, L2-normalised when it normalises), as
/// sentence-transformers' Pooling + Normalize compute it. Opset 17 (LayerNormalization, Erf).
/// </summary>
/// <remarks>The blocks are the encoder's own definition (<see cref="BertLayer.Forward{TX}"/>) run on
/// <see cref="OnnxEncoderForward"/>; only the embeddings and the pooling head are written here.</remarks>
public static class OnnxEncoderExporter
{
    /// <param name="tokenizer">When given, its vocabulary is written beside the graph (vocab.txt), so the folder loads alone.</param>
    public static OnnxExportResult Export(BertEncoder encoder, string outDir, OnnxExportOptions? options = null, BertWordPiece? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        options ??= new OnnxExportOptions();
        var c = encoder.Config;
        var g = new OnnxModelBuilder("bert", options.Weights == OnnxWeightFormat.Int4 ? 21 : 17);
        var f = new OnnxForward(g, options.Weights);
        string ids = g.Input("input_ids", OnnxElementType.Int64, "batch", "sequence");
        string mask = g.Input("attention_mask", OnnxElementType.Int64, "batch", "sequence");
        string types = g.Input("token_type_ids", OnnxElementType.Int64, "batch", "sequence");

        var emb = encoder.Get<Module>("embeddings");
        string len = g.Node("Squeeze", [g.Node("Shape", [ids], "seq_len1", OnnxAttribute.Of("start", 1L), OnnxAttribute.Of("end", 2L)), g.Ints(0)], "seq_len");
        string positions = g.Node("Range", [g.ScalarInt(0), len, g.ScalarInt(1)], "positions");
        string Gather(string table, string index, string name) => g.Node("Gather", [table, index], name, OnnxAttribute.Of("axis", 0L));
        string x = g.Node("Add", [g.Node("Add", [Gather(f.Vector(emb.GetParameter("word_embeddings.weight")), ids, "word"),
            Gather(f.Vector(emb.GetParameter("position_embeddings.weight")), positions, "position")], "word_pos"),
            Gather(f.Vector(emb.GetParameter("token_type_embeddings.weight")), types, "token_type")], "embedded");
        x = LayerNorm(g, f, x, emb, "LayerNorm", c.LayerNormEps);

        // additive key mask (B, 1, 1, T): 0 where attended, −1e30 at padding (exp underflows to exactly 0, as in our kernel,
        // and a row with no attended key stays finite)
        string maskF = g.Node("Cast", [mask], "mask_f", OnnxAttribute.Of("to", (long)OnnxElementType.Float));
        string keyBias = g.Node("Unsqueeze", [g.Node("Mul", [g.Node("Sub", [g.Scalar(1f), maskF], "pad"), g.Scalar(-1e30f)], "pad_bias"), g.Ints(1, 2)], "key_bias");
        var blocks = new OnnxEncoderForward(g, f, keyBias);
        foreach (var layer in encoder.Layers) x = layer.Forward(blocks, new OnnxValue(x, c.HiddenSize)).Name;
        string hidden = g.Node("Identity", [x], "last_hidden_state");
        // the encoder's pooling: the mean over attended tokens (count floored at 1e-9) or the [CLS] row; then, when it
        // normalises, x / max(‖x‖, 1e-12)
        string pooled;
        if (encoder.Pooling.Mode == PoolingMode.Cls)
            pooled = g.Node("Gather", [hidden, g.ScalarInt(0)], "cls_pooled", OnnxAttribute.Of("axis", 1L));
        else
        {
            string m3 = g.Node("Unsqueeze", [maskF, g.Ints(2)], "mask_3");
            string summed = g.Reduce("ReduceSum", g.Node("Mul", [hidden, m3], "masked_hidden"), [1], keepDims: false, "summed");
            string count = g.Node("Max", [g.Reduce("ReduceSum", maskF, [1], keepDims: true, "count"), g.Scalar(1e-9f)], "count_floor");
            pooled = g.Node("Div", [summed, count], "mean_pooled");
        }
        string sentence = encoder.Pooling.Normalize
            ? g.Node("Div", [pooled, g.Node("Max", [g.Reduce("ReduceL2", pooled, [1], keepDims: true, "l2"), g.Scalar(1e-12f)], "l2_floor")], "sentence_embedding")
            : g.Node("Identity", [pooled], "sentence_embedding");
        g.Output(hidden, OnnxElementType.Float, "batch", "sequence", c.HiddenSize);
        g.Output(sentence, OnnxElementType.Float, "batch", c.HiddenSize);
        g.Metadata("model_type", "bert");
        g.Metadata("num_hidden_layers", c.Layers.ToString(CultureInfo.InvariantCulture));
        g.Metadata("weights", options.Weights.ToString());

        string written = OnnxExporter.WriteFolder(outDir, g, tmp =>
        {
            tokenizer?.SaveVocab(Path.Combine(tmp, "vocab.txt"));
        });
        return new OnnxExportResult(written, g.NodeCount, f.MaxWeightError, g.Opset);
    }

    private static string LayerNorm(OnnxModelBuilder g, OnnxForward f, string x, Module owner, string name, float eps) =>
        OnnxEncoderForward.LayerNorm(g, f, x, owner.GetParameter(name + ".weight"), owner.GetParameter(name + ".bias"), eps);
}

/// <summary>
/// <see cref="IEncoderForward{TX}"/> as ONNX nodes, so that the exported graph is the encoder's own block
/// (<see cref="BertLayer.Forward{TX}"/>) rather than a second writing of it: LayerNormalization, attention as
/// MatMul/Softmax over heads with the additive key-padding bias <c>keyBias</c> (B, 1, 1, T), and exact GELU through Erf.
/// Everything else is <see cref="OnnxForward"/>'s.
/// </summary>
internal sealed class OnnxEncoderForward(OnnxModelBuilder g, OnnxForward f, string keyBias) : IEncoderForward<OnnxValue>
{
    internal static string LayerNorm(OnnxModelBuilder g, OnnxForward f, string x, Parameter weight, Parameter bias, double eps) =>
        g.Node("LayerNormalization", [x, f.Vector(weight), f.Vector(bias)], "layer_norm", OnnxAttribute.Of("axis", -1L), OnnxAttribute.Of("epsilon", (float)eps));

    public OnnxValue LayerNorm(OnnxValue x, Parameter weight, Parameter bias, double eps) => new(LayerNorm(g, f, x.Name, weight, bias, eps), x.Cols);

    public OnnxValue MaskedAttention(OnnxValue q, OnnxValue k, OnnxValue v, int heads, int headDim)
    {
        string Heads(OnnxValue x, string name, long[] perm) => g.Node("Transpose", [g.Node("Reshape", [x.Name, g.Ints(0, 0, heads, headDim)], name + "4")],
            name + "_t", OnnxAttribute.Of("perm", perm));
        string qh = Heads(q, "query", [0, 2, 1, 3]), kT = Heads(k, "key", [0, 2, 3, 1]), vh = Heads(v, "value", [0, 2, 1, 3]);
        string scores = g.Node("Add", [g.Node("Mul", [g.Node("MatMul", [qh, kT], "qk"), g.Scalar((float)(1 / Math.Sqrt(headDim)))], "scaled"), keyBias], "scores");
        string ctx = g.Node("MatMul", [g.Node("Softmax", [scores], "probs", OnnxAttribute.Of("axis", -1L)), vh], "ctx");
        return new(g.Node("Reshape", [g.Node("Transpose", [ctx], "ctx_t", OnnxAttribute.Of("perm", new long[] { 0, 2, 1, 3 })), g.Ints(0, 0, heads * headDim)], "ctx_flat"), heads * headDim);
    }

    // exact GELU: 0.5·u·(1 + erf(u/√2))
    public OnnxValue Gelu(OnnxValue x) => new(g.Node("Mul", [g.Node("Mul", [x.Name, g.Scalar(0.5f)], "half"),
        g.Node("Add", [g.Node("Erf", [g.Node("Mul", [x.Name, g.Scalar((float)(1 / Math.Sqrt(2)))], "u_s2")], "erf"), g.Scalar(1f)], "one_erf")], "gelu"), x.Cols);

    public OnnxValue Linear(ILinear layer, OnnxValue x) => f.Linear(layer, x);
    public OnnxValue RmsNorm(OnnxValue x, Parameter weight, double eps) => f.RmsNorm(x, weight, eps);
    public OnnxValue Rope(OnnxValue x, int heads, int headDim, RopeTable table, RopeStyle style) => f.Rope(x, heads, headDim, table, style);
    public OnnxValue Attention(OnnxValue q, OnnxValue k, OnnxValue v, in AttentionSpec spec) => f.Attention(q, k, v, spec);
    public OnnxValue Add(OnnxValue a, OnnxValue b) => f.Add(a, b);
    public OnnxValue SwiGlu(OnnxValue gate, OnnxValue up) => f.SwiGlu(gate, up);
    public OnnxValue GeGlu(OnnxValue gate, OnnxValue up) => f.GeGlu(gate, up);
    public OnnxValue Columns(OnnxValue x, int start, int count) => f.Columns(x, start, count);
    public OnnxValue Scale(OnnxValue x, double s) => f.Scale(x, s);
}
