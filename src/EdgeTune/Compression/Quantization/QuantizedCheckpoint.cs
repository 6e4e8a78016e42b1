using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Text.Json;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;

namespace EdgeTune.Compression.Quantization;

/// <summary>
/// EdgeTune's quantized Hugging Face folder: <c>config.json</c>, <c>generation_config.json</c>, the tokenizer files and
/// one <c>model.safetensors</c> in which every quantized weight <c>&lt;hf name&gt;.weight</c> is stored as a U8 tensor
/// [rows, row bytes] named <c>&lt;hf name&gt;.weight.q</c> (the format's rows, see <see cref="QuantFormats"/>), and
/// the safetensors <c>__metadata__</c> holds, under that tensor's name, <c>{"format":"nf4","shape":[rows, cols]}</c>.
/// The token embedding / LM head may be stored quantized the same way (<c>model.embed_tokens.weight.q</c>).
/// Every other tensor is stored as held (F32, F16 or BF16; GGUF blocks widened to F32) under its HF name; q/k rows
/// are in HF's half-split RoPE layout.
/// </summary>
public static class QuantizedCheckpoint
{
    /// <summary>Suffix of a quantized tensor's name after the HF weight name.</summary>
    public const string Suffix = QuantizedTensors.Suffix;

    /// <summary>Writes the folder for a model whose projections may be <see cref="QuantizedLinear"/> (others F32).
    /// The folder is written beside the target and moved into place; an existing folder is replaced.</summary>
    public static void Save(DecoderModel model, string outDir, string? tokenizerFolder = null, ITokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        if (tokenizerFolder is not null && !Directory.Exists(tokenizerFolder))
            throw new DirectoryNotFoundException($"QuantizedCheckpoint.Save: tokenizer folder '{tokenizerFolder}' does not exist");
        var layers = model.Projections().ToDictionary(p => p.Layer.Name + ".weight", p => p.Layer);
        if (layers.Values.FirstOrDefault(l => l is Adapters.LoraLinear) is { } wrapped)
            throw new ArgumentException($"QuantizedCheckpoint.Save: '{wrapped.Name}' carries a LoRA adapter; save the adapter with AdapterFiles and remove it first");
        var cfg = model.Config with
        {
            TorchDtype = (model.Embedding is not QuantizedEmbedding ? model.Embed.Value.DType : DType.BF16) switch { DType.BF16 => "bfloat16", DType.F16 => "float16", _ => "float32" },
            BosTokenId = model.Config.BosTokenId ?? tokenizer?.BosId,
            EosTokenIds = model.Config.EosTokenIds.Count > 0 ? model.Config.EosTokenIds : tokenizer?.EosId is int e ? [e] : [],
            Architectures = model.Config.Architectures.Count > 0 ? model.Config.Architectures : [model.Family.DefaultArchitecture(model.Config)],
        };
        string full = Path.GetFullPath(outDir);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"QuantizedCheckpoint: '{outDir}' has no parent folder", nameof(outDir));
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        var owned = new List<Tensor>();
        try
        {
            File.WriteAllText(Path.Combine(tmp, "config.json"), cfg.ToJson());
            File.WriteAllText(Path.Combine(tmp, "generation_config.json"), ModelExporter.GenerationConfigJson(cfg));
            var tensors = new List<KeyValuePair<string, Tensor>>();
            var meta = new Dictionary<string, string> { ["format"] = "pt", ["edgetune.quantized"] = "1" };
            foreach (var p in model.Parameters)
            {
                bool rope = GgufTensorNames.IsRopeProjection(p.Name, out bool isKey) && model.RopeStyle != RopeStyle.HalfSplit;
                int heads = isKey ? model.Config.NumKeyValueHeads : model.Config.NumAttentionHeads;
                QuantizedMatrix? table = p.Name == model.Embed.Name ? (model.Embedding as QuantizedEmbedding)?.Matrix : p.Name == model.LmHead.Name ? (model.Head as QuantizedEmbedding)?.Matrix : null;
                if (table is not null || layers.TryGetValue(p.Name, out var layer) && layer is QuantizedLinear)
                {
                    var w = table ?? ((QuantizedLinear)layers[p.Name]).Weight;
                    var bytes = Tensor.Zeros(DType.U8, [w.Rows, w.RowBytes], p.Name + Suffix);
                    owned.Add(bytes);
                    if (rope) RopePermutation.PermuteRows(w.Bytes, bytes.Span<byte>(), w.Rows, heads, toGguf: false);
                    else w.Bytes.CopyTo(bytes.Span<byte>());
                    tensors.Add(new(bytes.Name, bytes));
                    meta[bytes.Name] = $"{{\"format\":\"{w.Format.Info().Name}\",\"shape\":[{w.Rows},{w.Cols}]}}";
                    continue;
                }
                Tensor t = p.Value;
                if (t.DType.IsBlockQuantized() || t.DType == DType.F64) owned.Add(t = t.DType == DType.F64 ? t.To(DType.F32) : GgufQuant.ToFloat32(t)); // F16/BF16 stay as they are
                tensors.Add(new(p.Name, ModelExporter.ToHfStored(model, p.Name, t, owned)));
            }
            SafeTensorsWriter.Write(Path.Combine(tmp, "model.safetensors"), tensors, meta);
            if (tokenizerFolder is not null)
                foreach (string name in ModelExporter.TokenizerFiles.Append(ByteTokenizer.MarkerFile))
                {
                    string src = Path.Combine(tokenizerFolder, name);
                    if (File.Exists(src)) File.Copy(src, Path.Combine(tmp, name));
                }
            if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
            else if (File.Exists(full)) throw new IOException($"QuantizedCheckpoint: '{full}' is a file, not a folder");
            Directory.Move(tmp, full);
        }
        catch
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
        }
    }

    /// <summary>See <see cref="QuantizedTensors.TryRead"/>.</summary>
    public static bool TryRead(ICheckpointReader reader, string name, ReadOnlySpan<int> shape, out Tensor? bytes, out QuantFormat format) =>
        QuantizedTensors.TryRead(reader, name, shape, out bytes, out format);

    /// <summary>See <see cref="QuantizedTensors.Dequantize"/>.</summary>
    public static Tensor Dequantize(Tensor bytes, QuantFormat format, ReadOnlySpan<int> shape, string name) =>
        QuantizedTensors.Dequantize(bytes, format, shape, name);
}
