using System.Globalization;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using EdgeTune.Nn;

namespace EdgeTune.Formats.Export;

/// <summary>
/// Exports a BERT-style encoder (MiniLM, all-MiniLM, fine-tuned ones: adapters are read back through their own forward,
/// so they are merged) as an ONNX graph for ONNX Runtime and its NPU/GPU providers. Inputs <c>input_ids</c>,
/// <c>attention_mask</c>, <c>token_type_ids</c> (int64, batch × sequence) as transformers' exports name them; outputs
/// <c>last_hidden_state</c> (batch, sequence, hidden) and <c>sentence_embedding</c> (batch, hidden): the encoder's
/// <see cref="BertEncoder.Pooling"/> (the mean over attended tokens or the [CLS] row, L2-normalised when it normalises), as
/// sentence-transformers' Pooling + Normalize compute it. Opset 17 (LayerNormalization, Erf).
/// </summary>
/// <remarks>The graph mirrors <see cref="BertLayer.Forward"/> (post-norm: LN(x + attn), LN(a + FFN), exact GELU); the
/// encoder's block is written on the tape, not on <see cref="Nn.IForward{TX}"/>, so this is its second writing — the parity
/// test against our own embeddings is what keeps the two together.</remarks>
public static class OnnxEncoderExporter
{
    public static OnnxExportResult Export(BertEncoder encoder, string outDir, OnnxExportOptions? options = null, string? vocabFile = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        options ??= new OnnxExportOptions();
        if (vocabFile is not null && !File.Exists(vocabFile)) throw new FileNotFoundException($"ONNX export: vocabulary '{vocabFile}' does not exist", vocabFile);
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
        int h = c.Heads, d = c.HeadDim;
        foreach (var layer in encoder.Layers)
        {
            string l = $"encoder.layer.{layer.Index}";
            var self = layer.Get<Module>("attention").Get<Module>("self");
            string Heads(string name, long[] perm) => g.Node("Transpose", [g.Node("Reshape",
                [f.Linear(self.Get<ILinear>(name), new OnnxValue(x, c.HiddenSize)).Name, g.Ints(0, 0, h, d)], $"{l}.{name}4")],
                $"{l}.{name}_t", OnnxAttribute.Of("perm", perm));
            string q = Heads("query", [0, 2, 1, 3]), kT = Heads("key", [0, 2, 3, 1]), v = Heads("value", [0, 2, 1, 3]);
            string scores = g.Node("Add", [g.Node("Mul", [g.Node("MatMul", [q, kT], $"{l}.qk"), g.Scalar((float)(1 / Math.Sqrt(d)))], $"{l}.scaled"), keyBias], $"{l}.scores");
            string ctx = g.Node("MatMul", [g.Node("Softmax", [scores], $"{l}.probs", OnnxAttribute.Of("axis", -1L)), v], $"{l}.ctx");
            ctx = g.Node("Reshape", [g.Node("Transpose", [ctx], $"{l}.ctx_t", OnnxAttribute.Of("perm", new long[] { 0, 2, 1, 3 })), g.Ints(0, 0, c.HiddenSize)], $"{l}.ctx_flat");
            var attnOut = layer.Get<Module>("attention").Get<Module>("output");
            string dense = f.Linear(attnOut.Get<ILinear>("dense"), new OnnxValue(ctx, c.HiddenSize)).Name;
            string a = LayerNorm(g, f, g.Node("Add", [dense, x], $"{l}.attn_res"), attnOut, "LayerNorm", c.LayerNormEps);
            string up = f.Linear(layer.Get<Module>("intermediate").Get<ILinear>("dense"), new OnnxValue(a, c.HiddenSize)).Name;
            // exact GELU: 0.5·u·(1 + erf(u/√2))
            string gelu = g.Node("Mul", [g.Node("Mul", [up, g.Scalar(0.5f)], $"{l}.half"),
                g.Node("Add", [g.Node("Erf", [g.Node("Mul", [up, g.Scalar((float)(1 / Math.Sqrt(2)))], $"{l}.u_s2")], $"{l}.erf"), g.Scalar(1f)], $"{l}.one_erf")], $"{l}.gelu");
            var output = layer.Get<Module>("output");
            string down = f.Linear(output.Get<ILinear>("dense"), new OnnxValue(gelu, c.IntermediateSize)).Name;
            x = LayerNorm(g, f, g.Node("Add", [down, a], $"{l}.ffn_res"), output, "LayerNorm", c.LayerNormEps);
        }
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
            if (vocabFile is not null) File.Copy(vocabFile, Path.Combine(tmp, "vocab.txt"));
        });
        return new OnnxExportResult(written, g.NodeCount, f.MaxWeightError, g.Opset);
    }

    private static string LayerNorm(OnnxModelBuilder g, OnnxForward f, string x, Module owner, string name, float eps) =>
        g.Node("LayerNormalization", [x, f.Vector(owner.GetParameter(name + ".weight")), f.Vector(owner.GetParameter(name + ".bias"))],
            "layer_norm", OnnxAttribute.Of("axis", -1L), OnnxAttribute.Of("epsilon", eps));
}
