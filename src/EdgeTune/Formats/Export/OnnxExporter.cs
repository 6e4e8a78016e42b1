using System.Globalization;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models;

namespace EdgeTune.Formats.Export;

/// <summary>What an ONNX export writes.</summary>
/// <param name="Weights">Projection weights as F32, or int8 QDQ (per output channel).</param>
/// <param name="MaxPositions">Rows of the rotary tables in the graph: the longest context (past + new tokens) the exported
/// model accepts. Defaults to the model's limit, capped at 8192.</param>
public sealed record OnnxExportOptions(OnnxWeightFormat Weights = OnnxWeightFormat.Float32, int? MaxPositions = null);

/// <summary>What an ONNX export produced.</summary>
/// <param name="ModelPath">The .onnx file (its weights are in <c>model.onnx.data</c> beside it).</param>
/// <param name="Nodes">Graph nodes written.</param>
/// <param name="MaxWeightError">For int8/int4 weights, the largest |w − dequantized w| over every projection; 0 for F32.</param>
/// <param name="Opset">The default-domain opset the graph declares (17; 21 for int4 weights).</param>
public sealed record OnnxExportResult(string ModelPath, int Nodes, double MaxWeightError, int Opset);

/// <summary>
/// Exports a decoder (any family) as an ONNX graph with a KV cache, built by running the family's one block definition
/// on <see cref="OnnxForward"/>. Inputs: <c>input_ids</c> int64 (batch, sequence) and, per layer i,
/// <c>past_key_values.i.key</c>/<c>.value</c> float (batch, kv_heads, past_sequence, head_dim) — zero-length on the
/// first call. Outputs: <c>logits</c> (batch, sequence, vocab) and <c>present.i.key</c>/<c>.value</c> (batch, kv_heads,
/// past_sequence + sequence, head_dim), to feed back as the next call's past. Positions are past_sequence onward (no
/// padding inside a batch). Default-domain opset 17, so ONNX Runtime's CPU, GPU and NPU providers load it.
/// </summary>
public static class OnnxExporter
{
    public static OnnxExportResult ExportDecoder(DecoderModel model, string outDir, OnnxExportOptions? options = null, string? tokenizerFolder = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        options ??= new OnnxExportOptions();
        var cfg = model.Config;
        int maxPositions = options.MaxPositions ?? Math.Min(model.MaxPositions, 8192);
        if (maxPositions < 1 || maxPositions > model.MaxPositions)
            throw new ArgumentOutOfRangeException(nameof(options), maxPositions, $"ONNX export: MaxPositions must be within 1..{model.MaxPositions} for this model");
        if (tokenizerFolder is not null && !Directory.Exists(tokenizerFolder))
            throw new DirectoryNotFoundException($"ONNX export: tokenizer folder '{tokenizerFolder}' does not exist");

        var g = new OnnxModelBuilder(cfg.ModelType, options.Weights == OnnxWeightFormat.Int4 ? 21 : 17);
        int layers = cfg.NumHiddenLayers, hkv = cfg.NumKeyValueHeads, d = cfg.HeadDim, v = model.VocabSize;
        string ids = g.Input("input_ids", OnnxElementType.Int64, "batch", "sequence");
        var past = new (string Key, string Value)[layers];
        for (int i = 0; i < layers; i++)
            past[i] = (g.Input($"past_key_values.{i}.key", OnnxElementType.Float, "batch", hkv, "past_sequence", d),
                       g.Input($"past_key_values.{i}.value", OnnxElementType.Float, "batch", hkv, "past_sequence", d));

        // positions P .. P+T−1 with P the past length and T the new tokens
        string pastLen = g.Node("Shape", [past[0].Key], "past_len", OnnxAttribute.Of("start", 2L), OnnxAttribute.Of("end", 3L));
        string newLen = g.Node("Shape", [ids], "new_len", OnnxAttribute.Of("start", 1L), OnnxAttribute.Of("end", 2L));
        string total = g.Node("Squeeze", [g.Node("Add", [pastLen, newLen], "total_len1"), g.Ints(0)], "total_len");
        string start = g.Node("Squeeze", [pastLen, g.Ints(0)], "past_len0");
        string positions = g.Node("Range", [start, total, g.ScalarInt(1)], "positions");

        var f = new OnnxForward(g, options.Weights, positions, total, i => past[i], maxPositions);
        string embed = f.Vector(model.Embedding.Weight);
        var x = new OnnxValue(g.Node("Gather", [embed, ids], "embedded", OnnxAttribute.Of("axis", 0L)), cfg.HiddenSize);
        if (model.EmbeddingScale != 1.0) x = f.Scale(x, model.EmbeddingScale);
        foreach (var layer in model.Layers) x = layer.Forward(f, x, maxPositions);
        var h = f.RmsNorm(x, model.FinalNorm, cfg.RmsNormEps);
        string headT = g.Node("Transpose", [f.Vector(model.Head.Weight)], "lm_head_t", OnnxAttribute.Of("perm", new long[] { 1, 0 }));
        string logits = g.Node("MatMul", [h.Name, headT], model.FinalLogitSoftcap is null ? "logits" : "raw_logits");
        if (model.FinalLogitSoftcap is double cap)
            logits = g.Node("Mul", [g.Node("Tanh", [g.Node("Mul", [logits, g.Scalar((float)(1 / cap))], "over_cap")], "tanh_cap"), g.Scalar((float)cap)], "logits");
        g.Output(logits, OnnxElementType.Float, "batch", "sequence", v);
        for (int i = 0; i < layers; i++)
        {
            g.Output(f.Presents[i].Key, OnnxElementType.Float, "batch", hkv, "total_sequence", d);
            g.Output(f.Presents[i].Value, OnnxElementType.Float, "batch", hkv, "total_sequence", d);
        }
        g.Metadata("model_type", cfg.ModelType);
        g.Metadata("num_hidden_layers", layers.ToString(CultureInfo.InvariantCulture));
        g.Metadata("num_key_value_heads", hkv.ToString(CultureInfo.InvariantCulture));
        g.Metadata("head_dim", d.ToString(CultureInfo.InvariantCulture));
        g.Metadata("max_positions", maxPositions.ToString(CultureInfo.InvariantCulture));
        g.Metadata("weights", options.Weights.ToString());

        string written = WriteFolder(outDir, g, tmp =>
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), cfg.ToJson());
            if (tokenizerFolder is not null)
                foreach (string name in ModelExporter.TokenizerFiles)
                {
                    string src = Path.Combine(tokenizerFolder, name);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(tmp, name));
                }
        });
        return new OnnxExportResult(written, g.NodeCount, f.MaxWeightError, g.Opset);
    }

    /// <summary>Writes <c>model.onnx</c> (+ its data) of <paramref name="graph"/> and whatever <paramref name="extras"/> adds into a
    /// temporary folder beside <paramref name="outDir"/>, then moves it into place (an existing folder is replaced only once the new
    /// one is complete). Returns the final path of model.onnx.</summary>
    internal static string WriteFolder(string outDir, OnnxModelBuilder graph, Action<string> extras)
    {
        string full = Path.GetFullPath(outDir);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"ONNX export: '{outDir}' has no parent folder", nameof(outDir));
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            graph.Save(Path.Combine(tmp, "model.onnx"), typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0");
            extras(tmp);
            ModelExporter.MoveIntoPlace(tmp, full);
        }
        catch
        {
            ModelExporter.TryDelete(tmp);
            throw;
        }
        return Path.Combine(full, "model.onnx");
    }
}
