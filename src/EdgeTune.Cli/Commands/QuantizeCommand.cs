using System.CommandLine;
using System.Globalization;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text;

namespace EdgeTune.Cli.Commands;

/// <summary>
/// <c>edgetune quantize</c>: post-training quantization. q8_0 / q4_0 write one GGUF file that llama.cpp runs (every
/// 2-D weight in that type; widths that are not a multiple of 32 as F16); nf4 / int8 write EdgeTune's quantized
/// safetensors folder (decoder projections quantized, embedding, head and norms F32; config.json and the tokenizer
/// carried), which <c>generate</c>, <c>eval</c> and <c>finetune</c> load. Prints the written path, the sizes and the
/// bits per weight on stdout.
/// </summary>
public static class QuantizeCommand
{
    /// <summary>The <c>--dtype</c> values.</summary>
    public static readonly IReadOnlyList<string> DTypes = ["q8_0", "q4_0", "nf4", "int8"];

    public static Command Create()
    {
        var model = ModelOptions.Model();
        var tokenizer = ModelOptions.Tokenizer();
        var dtype = new Option<string>("--dtype") { Description = "q8_0 or q4_0 (GGUF file for llama.cpp), nf4 or int8 (EdgeTune safetensors folder)", Required = true };
        var output = new Option<string>("--out") { Description = "GGUF file (q8_0, q4_0) or folder (nf4, int8) to write (replaced if present)", Required = true };
        var command = new Command("quantize", "Post-training quantization of a model to q8_0 / q4_0 (GGUF) or nf4 / int8 (safetensors folder)");
        foreach (var o in new Option[] { model, tokenizer, dtype, output }) command.Options.Add(o);
        var encryption = new EncryptionCliOptions(writes: false);
        encryption.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            string dt = parse.GetValue(dtype)!.ToLowerInvariant();
            string outPath = parse.GetValue(output)!;
            if (!DTypes.Contains(dt))
            {
                throw new CliException(CliErrors.Usage, $"unknown --dtype '{dt}' (expected {string.Join(", ", DTypes)})");
            }
            var format = QuantFormats.Parse(dt);
            bool gguf = format is QuantFormat.Q8_0 or QuantFormat.Q4_0;
            if (gguf && Directory.Exists(outPath))
            {
                throw new CliException(CliErrors.Input, $"--out '{outPath}' is a folder; --dtype {dt} writes one GGUF file");
            }
            if (!gguf && File.Exists(outPath))
            {
                throw new CliException(CliErrors.Input, $"--out '{outPath}' is a file; --dtype {dt} writes a safetensors folder");
            }
            EncryptionCliOptions.RefusePlainOutput(outPath, "--out");
            using var key = encryption.BindForReading(parse, stderr);
            using var loaded = await ModelOptions.LoadAsync(parse, model, tokenizer, stderr, ct, new ModelLoadOptions(KeepQuantized: false), key).ConfigureAwait(false);
            if (loaded.Model is not DecoderModel llama)
            {
                throw new CliException(CliErrors.Model, $"{loaded.Source} is a {loaded.Config.ModelType} model; only decoder models can be quantized");
            }
            long parameters = llama.Parameters.ElementCount;
            long before = ModelQuantizer.SizeInBytes(llama);
            long after;
            string? parent = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (parent is not null) Directory.CreateDirectory(parent);
            if (gguf)
            {
                if (loaded.Tokenizer is null)
                {
                    throw new CliException(CliErrors.Input, $"a GGUF file embeds the tokenizer, but none was found for {loaded.Source}; name it with --tokenizer");
                }
                var report = ModelQuantizer.Quantize(llama, format);
                if (report.Skipped.Count > 0)
                    await stderr.WriteLineAsync($"note: {report.Skipped.Count} projections have widths that are not a multiple of 32 and are written as F16 (e.g. {report.Skipped[0]})").ConfigureAwait(false);
                ModelExporter.ExportGguf(llama, loaded.Tokenizer, outPath, format == QuantFormat.Q8_0 ? DType.Q8_0 : DType.Q4_0);
                after = new FileInfo(outPath).Length;
            }
            else
            {
                var report = ModelQuantizer.Quantize(llama, format);
                if (report.Layers == 0)
                {
                    throw new CliException(CliErrors.Model, $"no projection of {loaded.Source} has an input width that is a multiple of {format.Info().Name}'s block of {format.Info().BlockSize}");
                }
                if (report.Skipped.Count > 0)
                    await stderr.WriteLineAsync($"note: {report.Skipped.Count} projections are not a multiple of the {format.Info().BlockSize}-block and stay F32 (e.g. {report.Skipped[0]})").ConfigureAwait(false);
                string? tokOpt = parse.GetValue(tokenizer);
                string? tokFolder = tokOpt is null ? (Directory.Exists(loaded.Source) ? loaded.Source : null)
                    : Directory.Exists(tokOpt) ? tokOpt : Path.GetDirectoryName(Path.GetFullPath(tokOpt));
                QuantizedCheckpoint.Save(llama, outPath, tokFolder, loaded.Tokenizer);
                // a lone tokenizer file (llama2.c tok512.bin, tokenizer.model) travels with the folder
                if (tokOpt is not null && File.Exists(tokOpt) && !ModelExporter.TokenizerFiles.Contains(Path.GetFileName(tokOpt)))
                    File.Copy(tokOpt, Path.Combine(outPath, loaded.Tokenizer is Llama2cTokenizer ? "tokenizer.bin" : Path.GetFileName(tokOpt)), overwrite: true);
                else if (tokOpt is null && !Directory.Exists(loaded.Source) && loaded.Tokenizer is not null)
                    await stderr.WriteLineAsync("note: the tokenizer was not copied; pass --tokenizer when loading the output").ConfigureAwait(false);
                after = Directory.EnumerateFiles(outPath, "*.safetensors").Sum(f => new FileInfo(f).Length);
            }
            await stdout.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{Path.GetFullPath(outPath)} {dt}: {ExportCommand.FormatSize(before)} -> {ExportCommand.FormatSize(after)} " +
                $"({(double)before / after:0.00}x smaller), {8.0 * after / parameters:0.00} bits/weight over {parameters:N0} parameters")).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}
