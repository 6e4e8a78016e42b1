using System.CommandLine;
using System.Globalization;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Cli.Commands;

/// <summary><c>edgetune export</c>: writes a model as one GGUF file (llama.cpp, Ollama) or a Hugging Face
/// safetensors folder. Prints the written path and its size on stdout; load and write figures on stderr.</summary>
public static class ExportCommand
{
    /// <summary>The <c>--format</c> values.</summary>
    public static readonly IReadOnlyList<string> Formats = ["gguf", "safetensors"];

    /// <summary>The <c>--dtype</c> values.</summary>
    public static readonly IReadOnlyList<string> DTypes = ["f32", "f16", "bf16", "q8_0", "q4_0"];

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var format = new Option<string>("--format") { Description = "gguf (one file) or safetensors (Hugging Face folder)", Required = true };
        format.AcceptOnlyFromAmong([.. Formats]);
        var dtype = new Option<string>("--dtype")
        {
            Description = "Weight type: f32, f16, bf16 (safetensors only), q8_0 or q4_0 (gguf only)",
            DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong([.. DTypes]);
        var output = new Option<string>("--out") { Description = "GGUF file or safetensors folder to write (replaced if present)", Required = true };

        var command = new Command("export", "Write a model as GGUF (llama.cpp) or as a Hugging Face safetensors folder");
        foreach (var o in new Option[] { model, tokenizer, format, dtype, output }) command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            string fmt = parse.GetValue(format)!;
            string dt = parse.GetValue(dtype)!;
            string outPath = parse.GetValue(output)!;
            if (Validate(fmt, dt) is { } problem)
            {
                await stderr.WriteLineAsync(problem).ConfigureAwait(false);
                return 2;
            }
            var target = ParseDType(dt);
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, stderr, ct).ConfigureAwait(false);
            if (loaded.Model is not DecoderModel llama)
            {
                await stderr.WriteLineAsync($"export: {loaded.Source} is a {loaded.Config.ModelType} model, which cannot be exported (Llama-family decoders only)").ConfigureAwait(false);
                return 2;
            }
            ct.ThrowIfCancellationRequested();
            long bytes;
            if (fmt == "gguf")
            {
                if (loaded.Tokenizer is null)
                {
                    await stderr.WriteLineAsync($"export: a GGUF file embeds the tokenizer, but none was found for {loaded.Source}; name it with --tokenizer").ConfigureAwait(false);
                    return 2;
                }
                if (Directory.Exists(outPath))
                {
                    await stderr.WriteLineAsync($"export: --out '{outPath}' is a folder; GGUF is written to a file").ConfigureAwait(false);
                    return 2;
                }
                string? parent = Path.GetDirectoryName(Path.GetFullPath(outPath));
                if (parent is not null) Directory.CreateDirectory(parent);
                ModelExporter.ExportGguf(llama, loaded.Tokenizer, outPath, target);
                bytes = new FileInfo(outPath).Length;
            }
            else
            {
                if (File.Exists(outPath))
                {
                    await stderr.WriteLineAsync($"export: --out '{outPath}' is a file; safetensors export writes a folder").ConfigureAwait(false);
                    return 2;
                }
                string? tokFolder = TokenizerFolder(parse.GetValue(tokenizer), loaded.Source);
                ModelExporter.ExportSafetensors(llama, outPath, target, tokFolder, loaded.Tokenizer);
                bytes = Directory.EnumerateFiles(outPath, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
                if (!ModelExporter.TokenizerFiles.Any(n => File.Exists(Path.Combine(outPath, n))))
                    await stderr.WriteLineAsync("note: no Hugging Face tokenizer files were found to copy; pass --tokenizer when loading the export").ConfigureAwait(false);
            }
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{Path.GetFullPath(outPath)} {bytes} bytes ({FormatSize(bytes)})")).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>Null when <paramref name="format"/> can store <paramref name="dtype"/>, else the reason.</summary>
    public static string? Validate(string format, string dtype) => (format, dtype) switch
    {
        ("gguf", "bf16") => "export: --dtype bf16 is for --format safetensors; GGUF export writes f32, f16, q8_0 or q4_0",
        ("safetensors", "q8_0" or "q4_0") => $"export: --dtype {dtype} (block-quantized) is for --format gguf; safetensors export writes f32, f16 or bf16",
        _ when !Formats.Contains(format) => $"export: unknown --format '{format}' (expected {string.Join(", ", Formats)})",
        _ when !DTypes.Contains(dtype) => $"export: unknown --dtype '{dtype}' (expected {string.Join(", ", DTypes)})",
        _ => null,
    };

    private static DType ParseDType(string s) => s switch
    {
        "f32" => DType.F32,
        "f16" => DType.F16,
        "bf16" => DType.BF16,
        "q8_0" => DType.Q8_0,
        "q4_0" => DType.Q4_0,
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
