using System.CommandLine;
using EdgeTune.Formats.Hub;
using EdgeTune.Models;

namespace EdgeTune.Cli.Commands;

/// <summary>The options every command that reads a model shares, and how they load it.</summary>
public static class ModelOptions
{
    public static Option<string> Model() => new("--model")
    {
        Description = "Model folder (safetensors + config.json), GGUF or llama2.c file, or a Hugging Face id org/name[@revision]",
        Required = true,
    };

    public static Option<string?> Tokenizer() => new("--tokenizer")
    {
        Description = "Tokenizer file or folder (tokenizer.json, tokenizer.model, llama2.c tokenizer.bin); default: the model's folder",
    };

    /// <summary>Loads the model named by the options, reporting download progress on stderr.</summary>
    public static async Task<LoadedModel> LoadAsync(ParseResult parse, Option<string> model, Option<string?> tokenizer, TextWriter error, CancellationToken ct)
    {
        string reference = parse.GetValue(model)!;
        var progress = new Progress<DownloadProgress>(p =>
        {
            if (p.IsComplete && !p.FromCache) error.WriteLine($"downloaded {p.File} ({p.BytesDownloaded:N0} bytes)");
        });
        return await ModelLoader.LoadAsync(reference, parse.GetValue(tokenizer), null, progress, ct).ConfigureAwait(false);
    }
}
