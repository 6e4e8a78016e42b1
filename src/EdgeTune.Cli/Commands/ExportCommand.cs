using System.CommandLine;
using System.Globalization;
using EdgeTune.Adapters;
using EdgeTune.Formats;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune export</c>: writes a model as one GGUF file (llama.cpp, Ollama) or a Hugging Face
/// safetensors folder; with <c>--adapter</c> the model with the adapter merged into it, or (<c>--format lora-gguf</c>)
/// the adapter alone as a llama.cpp LoRA GGUF for that base. Prints the written path and its size on stdout; load and
/// write figures on stderr.</summary>
public static class ExportCommand
{
    /// <summary>The <c>--format</c> values.</summary>
    public static readonly IReadOnlyList<string> Formats = ["gguf", "safetensors", "lora-gguf", "onnx"];

    /// <summary>The <c>--dtype</c> values.</summary>
    public static readonly IReadOnlyList<string> DTypes = ["f32", "f16", "bf16", "q8_0", "q4_0", "int8", "int4"];

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var adapter = ModelOptions.Adapter();
        var format = new Option<string>("--format")
        {
            Description = "gguf (one file), safetensors (Hugging Face folder), onnx (folder: model.onnx with a KV cache, for ONNX Runtime and its GPU/NPU providers), or lora-gguf (the --adapter alone, as a llama.cpp LoRA file for the base model)",
            Required = true,
        };
        format.AcceptOnlyFromAmong([.. Formats]);
        var dtype = new Option<string>("--dtype")
        {
            Description = "Weight type: f32, f16, bf16 (safetensors only), q8_0 or q4_0 (gguf only), int8 or int4 (onnx only: QDQ projections, per channel / per 32-row block)",
            DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong([.. DTypes]);
        var output = new Option<string>("--out") { Description = "GGUF file, or safetensors/onnx folder to write (replaced if present)", Required = true };

        var command = new Command("export", "Write a model (with an adapter merged in, if given) as GGUF (llama.cpp), a Hugging Face safetensors folder or an ONNX folder (ONNX Runtime), or an adapter as a llama.cpp LoRA GGUF");
        foreach (var o in new Option[] { model, tokenizer, adapter, format, dtype, output }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            string fmt = parse.GetValue(format)!;
            string dt = parse.GetValue(dtype)!;
            string outPath = parse.GetValue(output)!;
            string? adapterDir = parse.GetValue(adapter);
            if ((Validate(fmt, dt) ?? ValidateAdapter(fmt, adapterDir)) is { } problem)
            {
                throw new CliException(CliErrors.Usage, problem);
            }
            if (fmt == "lora-gguf" ? Directory.Exists(outPath) : fmt == "gguf" && Directory.Exists(outPath))
            {
                throw new CliException(CliErrors.Input, $"--out '{outPath}' is a folder; {(fmt == "gguf" ? "GGUF" : "a LoRA GGUF")} is written to a file");
            }
            if (fmt is "onnx" or "safetensors" && File.Exists(outPath))
            {
                throw new CliException(CliErrors.Input, $"--out '{outPath}' is a file; {fmt} export writes a folder");
            }
            ModelOptions.ResolveAdapter(parse, adapter);
            EncryptionCliOptions.RefusePlainOutput(outPath, "--out");
            using var key = encryption.BindForReading(parse, stderr);
            if (fmt == "onnx" && adapterDir is null && IsEncoder(parse.GetValue(model), key))
            {
                string src = parse.GetValue(model)!;
                var (encoder, tokenizer) = EdgeTune.Models.Bert.BertFolder.Load(src, key);
                using (encoder)
                {
                    var r = OnnxEncoderExporter.Export(encoder, outPath, new OnnxExportOptions(OnnxWeights(dt)), tokenizer);
                    await stderr.WriteLineAsync($"ONNX encoder graph: {r.Nodes} nodes, opset {r.Opset}, inputs input_ids, attention_mask, token_type_ids, outputs last_hidden_state, sentence_embedding").ConfigureAwait(false);
                    await WriteWritten(stdout, outPath, FolderBytes(outPath)).ConfigureAwait(false);
                }
                return 0;
            }
            var target = ParseDType(dt);
            // Merging needs float projections: quantized GGUF projections are widened on load (F16/BF16 ones when merged).
            var loadOptions = adapterDir is not null && fmt != "lora-gguf" ? new ModelLoadOptions(KeepQuantized: false) : null;
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, stderr, ct, loadOptions, key).ConfigureAwait(false);
            if (loaded.Model is not DecoderModel llama)
            {
                throw new CliException(CliErrors.Model, $"{loaded.Source} is a {loaded.Config.ModelType} model, which cannot be exported (decoder models only)");
            }
            ct.ThrowIfCancellationRequested();
            LoraAdapter? applied = null;
            if (adapterDir is not null)
            {
                try { applied = AdapterFiles.Load(adapterDir, llama, "default", EdgeTune.Security.RunFiles.ForReading(adapterDir, key)); }
                catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException or ArgumentException or NotSupportedException)
                {
                    throw new CliException(CliErrors.Model, $"the adapter '{adapterDir}' does not fit the model {loaded.Source} " +
                        $"({llama.Config.ModelType}, {llama.Config.NumHiddenLayers} layers, hidden {llama.Config.HiddenSize}): {e.Message}");
                }
                await stderr.WriteLineAsync($"adapter {adapterDir}: {ModelOptions.Describe(applied)}").ConfigureAwait(false);
            }
            using var adapterScope = applied;
            long bytes;
            if (fmt == "lora-gguf")
            {
                var a = applied!;
                if (a.Modules.Any(m => m.IsDora) || a.SavedModules.Count > 0)
                {
                    string what = a.Modules.Any(m => m.IsDora) ? "is DoRA (it has magnitude vectors)" : $"replaces {string.Join(" and ", a.SavedModules)} whole (modules_to_save)";
                    throw new CliException(CliErrors.Model, $"the adapter '{adapterDir}' {what}, which a llama.cpp LoRA file cannot express; " +
                        "it must be merged: export the merged model with --format gguf instead");
                }
                CreateParent(outPath);
                LoraGgufExporter.Export(a, outPath, Path.GetFileName(Path.GetFullPath(adapterDir!).TrimEnd(Path.DirectorySeparatorChar)));
                bytes = new FileInfo(outPath).Length;
            }
            else
            {
                if (applied is not null)
                {
                    try { applied.Merge(); }
                    catch (InvalidOperationException e)
                    {
                        throw new CliException(CliErrors.Model, $"cannot merge the adapter '{adapterDir}': {e.Message}");
                    }
                    await stderr.WriteLineAsync($"merged the adapter into {applied.Layers.Count} projections").ConfigureAwait(false);
                }
                if (fmt == "gguf")
                {
                    if (loaded.Tokenizer is null)
                    {
                        throw new CliException(CliErrors.Input, $"a GGUF file embeds the tokenizer, but none was found for {loaded.Source}; name it with --tokenizer");
                    }
                    CreateParent(outPath);
                    ModelExporter.ExportGguf(llama, loaded.Tokenizer, outPath, target);
                    bytes = new FileInfo(outPath).Length;
                }
                else if (fmt == "onnx")
                {
                    var onnx = OnnxExporter.ExportDecoder(llama, outPath,
                        new OnnxExportOptions(OnnxWeights(dt)),
                        TokenizerFolder(parse.GetValue(tokenizer), loaded.Source));
                    bytes = FolderBytes(outPath);
                    string weights = dt is "int8" or "int4" ? string.Create(CultureInfo.InvariantCulture, $"; {dt} weights, largest weight error {onnx.MaxWeightError:G3}") : "";
                    await stderr.WriteLineAsync($"ONNX graph: {onnx.Nodes} nodes, opset {onnx.Opset}, inputs input_ids + past_key_values.N.key/value, outputs logits + present.N.key/value{weights}").ConfigureAwait(false);
                }
                else
                {
                    if (File.Exists(outPath))
                    {
                        throw new CliException(CliErrors.Input, $"--out '{outPath}' is a file; safetensors export writes a folder");
                    }
                    string? tokFolder = TokenizerFolder(parse.GetValue(tokenizer), loaded.Source);
                    ModelExporter.ExportSafetensors(llama, outPath, target, tokFolder, loaded.Tokenizer);
                    bytes = FolderBytes(outPath);
                    if (!ModelExporter.TokenizerFiles.Any(n => File.Exists(Path.Combine(outPath, n))))
                        await stderr.WriteLineAsync("note: no Hugging Face tokenizer files were found to copy; pass --tokenizer when loading the export").ConfigureAwait(false);
                }
            }
            await WriteWritten(stdout, outPath, bytes).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>Null when <paramref name="format"/> can store <paramref name="dtype"/>, else the reason.</summary>
    public static string? Validate(string format, string dtype) => (format, dtype) switch
    {
        ("onnx", not ("f32" or "int8" or "int4")) => $"--format onnx writes f32, int8 or int4 (QDQ) weights; --dtype {dtype} is for --format gguf or safetensors",
        (not "onnx", "int8" or "int4") => $"--dtype {dtype} is for --format onnx (QDQ projections); GGUF export has q8_0 and q4_0",
        ("lora-gguf", not "f32") => $"--format lora-gguf writes F32 adapter tensors; --dtype {dtype} is for --format gguf or safetensors",
        ("gguf", "bf16") => "--dtype bf16 is for --format safetensors; GGUF export writes f32, f16, q8_0 or q4_0",
        ("safetensors", "q8_0" or "q4_0") => $"--dtype {dtype} (block-quantized) is for --format gguf; safetensors export writes f32, f16 or bf16",
        _ when !Formats.Contains(format) => $"unknown --format '{format}' (expected {string.Join(", ", Formats)})",
        _ when !DTypes.Contains(dtype) => $"unknown --dtype '{dtype}' (expected {string.Join(", ", DTypes)})",
        _ => null,
    };

    /// <summary>Null when <paramref name="format"/> and the presence of <c>--adapter</c> go together, else the reason.</summary>
    public static string? ValidateAdapter(string format, string? adapterDir) =>
        format == "lora-gguf" && adapterDir is null
            ? "--format lora-gguf writes an adapter alone; name the adapter with --adapter DIR (a PEFT folder or a fine-tuning run folder)"
            : null;

    /// <summary>The stdout line every export ends with: the written path and its size.</summary>
    private static Task WriteWritten(TextWriter stdout, string outPath, long bytes) =>
        stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFullPath(outPath)} {bytes} bytes ({FormatSize(bytes)})"));

    private static long FolderBytes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    /// <summary>True for a BERT-style encoder (a folder or .onnx file with vocab.txt, whose config.json, if any, is a bert model);
    /// the config of an encoder in an encrypted run folder is read with <paramref name="key"/> (refused without it).</summary>
    private static bool IsEncoder(string? path, EdgeTune.Security.EncryptionKey? key)
    {
        if (path is null) return false;
        string? dir = Directory.Exists(path) ? path : File.Exists(path) && path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? Path.GetDirectoryName(Path.GetFullPath(path)) : null;
        if (dir is null || !File.Exists(Path.Combine(dir, "vocab.txt"))) return false;
        string config = Path.Combine(dir, "config.json");
        if (!File.Exists(config)) return true;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(EdgeTune.Security.RunFiles.ForReading(dir, key).ReadAllBytes(config));
            return doc.RootElement.TryGetProperty("model_type", out var t) && t.GetString() is "bert";
        }
        catch (System.Text.Json.JsonException) { return false; }
    }

    private static void CreateParent(string file)
    {
        string? parent = Path.GetDirectoryName(Path.GetFullPath(file));
        if (parent is not null) Directory.CreateDirectory(parent);
    }

    private static EdgeTune.Formats.Onnx.OnnxWeightFormat OnnxWeights(string dtype) => dtype switch
    {
        "int8" => EdgeTune.Formats.Onnx.OnnxWeightFormat.Int8,
        "int4" => EdgeTune.Formats.Onnx.OnnxWeightFormat.Int4,
        _ => EdgeTune.Formats.Onnx.OnnxWeightFormat.Float32,
    };

    private static DType ParseDType(string s) => s switch
    {
        "f32" => DType.F32,
        "f16" => DType.F16,
        "bf16" => DType.BF16,
        "q8_0" => DType.Q8_0,
        "q4_0" => DType.Q4_0,
        "int8" or "int4" => DType.F32, // the ONNX exporter quantizes from float weights itself
        _ => throw new ArgumentException($"unknown dtype '{s}'", nameof(s)),
    };

    /// <summary>The folder whose Hugging Face tokenizer files are copied: --tokenizer (or its folder), else the model's folder.</summary>
    private static string? TokenizerFolder(string? tokenizerOption, string modelSource)
    {
        if (tokenizerOption is not null)
        {
            if (Directory.Exists(tokenizerOption)) return tokenizerOption;
            // A lone file (e.g. llama2.c tok512.bin) brings no Hugging Face files; a tokenizer.json brings its siblings.
            return ModelExporter.TokenizerFiles.Contains(Path.GetFileName(tokenizerOption))
                ? Path.GetDirectoryName(Path.GetFullPath(tokenizerOption)) : null;
        }
        return Directory.Exists(modelSource) ? modelSource : null;
    }

    internal static string FormatSize(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.00} MiB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => $"{bytes} B",
    };
}
