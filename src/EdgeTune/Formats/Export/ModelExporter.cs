using System.Text.Json;
using EdgeTune.Internal;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;

namespace EdgeTune.Formats.Export;

/// <summary>
/// Writes a <see cref="DecoderModel"/> out for other tools: a Hugging Face folder (config.json,
/// model.safetensors, generation_config.json, tokenizer files) or a single GGUF v3 file for llama.cpp.
/// </summary>
public static class ModelExporter
{
    /// <summary>Tokenizer files copied into a Hugging Face export when the source folder has them.</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"];

    /// <summary>
    /// Writes <paramref name="outDir"/> in Hugging Face layout: <c>config.json</c> (with torch_dtype),
    /// <c>model.safetensors</c> (HF names, every tensor in <paramref name="dtype"/>, q/k rows in HF's half-split
    /// layout whatever the model's <see cref="DecoderModel.RopeStyle"/>), <c>generation_config.json</c> (bos/eos from
    /// the config, else from <paramref name="tokenizer"/>) and the <see cref="TokenizerFiles"/> found in
    /// <paramref name="tokenizerFolder"/>. The folder is assembled beside the target and moved into place at the
    /// end, so a failed export leaves no half-written folder; an existing <paramref name="outDir"/> is replaced.
    /// Every file goes through <paramref name="files"/> (default plain): in an encrypted run folder each is written
    /// encrypted, bound to its final path.
    /// </summary>
    public static void ExportSafetensors(DecoderModel model, string outDir, DType dtype = DType.F32,
        string? tokenizerFolder = null, ITokenizer? tokenizer = null, Security.RunFiles? files = null)
    {
        files ??= Security.RunFiles.Plain;
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        string torchDtype = dtype switch
        {
            DType.F32 => "float32",
            DType.F16 => "float16",
            DType.BF16 => "bfloat16",
            _ => throw new ArgumentException($"ModelExporter.ExportSafetensors: dtype {dtype} is not F32, F16 or BF16", nameof(dtype)),
        };
        if (tokenizerFolder is not null && !Directory.Exists(tokenizerFolder))
            throw new DirectoryNotFoundException($"ModelExporter.ExportSafetensors: tokenizer folder '{tokenizerFolder}' does not exist");

        var cfg = model.Config with
        {
            TorchDtype = torchDtype,
            BosTokenId = model.Config.BosTokenId ?? tokenizer?.BosId,
            EosTokenIds = model.Config.EosTokenIds.Count > 0 ? model.Config.EosTokenIds : tokenizer?.EosId is int e ? [e] : [],
            Architectures = model.Config.Architectures.Count > 0 ? model.Config.Architectures : [model.Family.DefaultArchitecture(model.Config)],
        };

        string full = Path.GetFullPath(outDir);
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"ModelExporter: '{outDir}' has no parent folder", nameof(outDir));
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        var staged = files.Staging(tmp, full);
        try
        {
            staged.WriteAllText(Path.Combine(tmp, "config.json"), cfg.ToJson());
            staged.WriteAllText(Path.Combine(tmp, "generation_config.json"), GenerationConfigJson(cfg));
            var owned = new List<Tensor>();
            try
            {
                var tensors = new List<KeyValuePair<string, Tensor>>();
                foreach (var p in model.Parameters)
                {
                    var t = ToHfStored(model, p.Name, p.Value, owned);
                    if (t.DType != dtype)
                    {
                        t = t.DType.IsBlockQuantized() ? GgufQuant.ToFloat32(t).To(dtype) : t.To(dtype);
                        owned.Add(t);
                    }
                    tensors.Add(new(p.Name, t));
                }
                SafeTensorsWriter.Write(staged, Path.Combine(tmp, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            }
            finally
            {
                foreach (var o in owned) o.Dispose();
            }
            if (tokenizerFolder is not null)
                foreach (string name in TokenizerFiles)
                {
                    string src = Path.Combine(tokenizerFolder, name);
                    if (File.Exists(src)) staged.CopyIn(src, Path.Combine(tmp, name));
                }
            MoveIntoPlace(tmp, full);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>
    /// Writes a GGUF v3 file that llama.cpp loads: <c>general.architecture</c> = the config's model type (llama,
    /// mistral, qwen2), its hyperparameters (<see cref="GgufLlama.Metadata"/>), the tokenizer
    /// (<see cref="GgufTokenizerMetadata"/>), norms and biases in F32, 2-D weights in <paramref name="dtype"/>
    /// (F32, F16, Q8_0, Q4_0). A weight whose rows are not a multiple of 32 cannot be block-quantized and is
    /// written as F16 instead, as llama.cpp's converter does. q/k rows are permuted to the layout llama.cpp
    /// expects for the architecture. The file appears atomically.
    /// </summary>
    public static void ExportGguf(DecoderModel model, ITokenizer tokenizer, string outFile, DType dtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(outFile);
        if (dtype is not (DType.F32 or DType.F16 or DType.Q8_0 or DType.Q4_0))
            throw new ArgumentException($"ModelExporter.ExportGguf: dtype {dtype} is not F32, F16, Q8_0 or Q4_0", nameof(dtype));
        var cfg = model.Config;
        var meta = GgufTokenizerMetadata.For(tokenizer, cfg.VocabSize);
        meta.Add(new("general.file_type", (uint)FileType(dtype)));
        var owned = new List<Tensor>();
        try
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var p in model.Parameters)
            {
                var t = p.Value;
                DType target = GgufTypeFor(t, dtype);
                if (t.DType != target)
                {
                    var f = t.DType == DType.F32 ? t : Own(GgufQuant.ToFloat32(t), owned);
                    t = target.IsBlockQuantized() ? GgufQuant.Quantize(f, target) : f.DType == target ? f : f.To(target);
                    if (!ReferenceEquals(t, f)) owned.Add(t);
                }
                tensors.Add(new(p.Name, t));
            }
            var extra = model.Family.GgufExtraTensors(cfg).ToList();
            owned.AddRange(extra.Select(e => e.Value));
            GgufLlama.Write(outFile, cfg, tensors, model.RopeStyle, meta, model.Family.GgufNames, model.Family.GgufMetadata(cfg), extra);
        }
        finally
        {
            foreach (var o in owned) o.Dispose();
        }
    }

    /// <summary>The GGUF storage type of a tensor exported at <paramref name="requested"/>: F32 for vectors (llama.cpp
    /// needs F32 norms), F16 for block-quantized requests whose row length is not a multiple of the block.</summary>
    public static DType GgufTypeFor(Tensor t, DType requested)
    {
        if (t.Rank < 2) return DType.F32;
        if (requested.IsBlockQuantized() && t.Dim(-1) % requested.BlockSize() != 0) return DType.F16;
        return requested;
    }

    // llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7.
    private static int FileType(DType d) => d switch { DType.F16 => 1, DType.Q4_0 => 2, DType.Q8_0 => 7, _ => 0 };

    private static Tensor Own(Tensor t, List<Tensor> owned)
    {
        owned.Add(t);
        return t;
    }

    /// <summary>A float parameter as Hugging Face files store it: q/k weights and biases permuted to half-split when the
    /// model runs interleaved RoPE, and norm weights the family keeps as multipliers (Gemma's 1 + w) back to HF's w.
    /// New tensors go to <paramref name="owned"/>; anything else is returned as it is.</summary>
    internal static Tensor ToHfStored(DecoderModel model, string name, Tensor t, List<Tensor> owned)
    {
        if (model.RopeStyle != RopeStyle.HalfSplit && GgufTensorNames.IsRopeProjection(name, out bool isKey))
        {
            int heads = isKey ? model.Config.NumKeyValueHeads : model.Config.NumAttentionHeads;
            return Own(RopePermutation.Convert(t, heads, model.RopeStyle, RopeStyle.HalfSplit), owned);
        }
        if (model.Family.NormOffset != 0 && t.Rank == 1 && model.Family.IsNormWeight(name))
            return Own(Tensor.From<float>(t.ToFloatArray().Select(v => v - model.Family.NormOffset).ToArray(), [t.Dim(0)], name), owned);
        return t;
    }

    /// <summary>generation_config.json for a model folder (bos/eos/pad ids from the config).</summary>
    internal static string GenerationConfigJson(HfConfig cfg)
    {
        JsonElement? eos = cfg.EosTokenIds.Count switch
        {
            0 => null,
            1 => EdgeTuneJson.Element(cfg.EosTokenIds[0]),
            _ => EdgeTuneJson.Element(cfg.EosTokenIds.ToArray()),
        };
        return EdgeTuneJson.Write(new GenerationConfigJson(cfg.BosTokenId, eos, cfg.PadTokenId), EdgeTuneJson.Default.GenerationConfigJson, indented: true);
    }

    /// <summary>Replaces <paramref name="target"/> with the finished <paramref name="tmp"/> folder (old one moved aside, then deleted).</summary>
    internal static void MoveIntoPlace(string tmp, string target)
    {
        string? old = null;
        if (Directory.Exists(target))
        {
            old = target + $".old-{Guid.NewGuid():N}";
            Directory.Move(target, old);
        }
        else if (File.Exists(target)) throw new IOException($"ModelExporter: '{target}' is a file, not a folder");
        try { Directory.Move(tmp, target); }
        catch
        {
            if (old is not null) Directory.Move(old, target);
            throw;
        }
        if (old is not null) TryDelete(old);
    }

    internal static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>generation_config.json: the token ids the config knows (absent ones left out); eos_token_id is an int, or a
/// list when the model has several.</summary>
internal sealed record GenerationConfigJson(int? BosTokenId, JsonElement? EosTokenId, int? PadTokenId);
