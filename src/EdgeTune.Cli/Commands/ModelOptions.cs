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
        Description = "Tokenizer file or folder (tokenizer.json, tokenizer.model, llama2.c tokenizer.bin, or a .gguf that embeds one); " +
            "default: the model's folder, or the tokenizer embedded in a .gguf model",
    };

    public static Option<string?> Adapter() => new("--adapter")
    {
        Description = "A LoRA/DoRA adapter folder (PEFT layout: adapter_config.json + adapter_model.safetensors), " +
            "or a fine-tuning run folder whose adapter/ subfolder holds one, to apply",
    };

    /// <summary>Checks, before any model is loaded, that --adapter (if given) names an adapter: a PEFT folder, or a
    /// fine-tuning run folder whose adapter/ subfolder is one. Returns that folder (null without --adapter).</summary>
    /// <exception cref="FileNotFoundException">It names neither (the message says what it found instead).</exception>
    public static string? ResolveAdapter(ParseResult parse, Option<string?> adapter)
    {
        if (parse.GetValue(adapter) is not { } dir) return null;
        string folder = EdgeTune.Adapters.AdapterFiles.ResolveFolder(dir);
        string weights = Path.Combine(folder, EdgeTune.Adapters.AdapterFiles.WeightsFile);
        if (!File.Exists(weights) && !File.Exists(Path.Combine(folder, EdgeTune.Adapters.AdapterFiles.PickleWeightsFile)))
            throw new FileNotFoundException($"--adapter: '{folder}' has {EdgeTune.Adapters.AdapterFiles.ConfigFile} but no {EdgeTune.Adapters.AdapterFiles.WeightsFile}", weights);
        return folder;
    }

    /// <summary>Applies the adapter named by <paramref name="adapter"/> (if any) to a loaded decoder model; returns it
    /// (null without --adapter).</summary>
    public static EdgeTune.Adapters.LoraAdapter? ApplyAdapter(ParseResult parse, Option<string?> adapter, LoadedModel loaded, TextWriter error,
        EdgeTune.Security.EncryptionKey? key = null)
    {
        if (parse.GetValue(adapter) is not { } dir) return null;
        if (loaded.Model is not EdgeTune.Models.DecoderModel llama)
            throw new NotSupportedException($"--adapter needs a decoder model; '{loaded.Source}' is {loaded.Config.ModelType}");
        var a = EdgeTune.Adapters.AdapterFiles.Load(dir, llama, "default", EdgeTune.Security.RunFiles.ForReading(dir, key));
        error.WriteLine($"adapter {dir}: {Describe(a)}");
        return a;
    }

    /// <summary>"r=8, 1,234 parameters on 14 projections" (r=min..max when ranks differ; DoRA and replaced modules noted).</summary>
    public static string Describe(EdgeTune.Adapters.LoraAdapter a)
    {
        int lo = a.Modules.Min(m => m.Rank), hi = a.Modules.Max(m => m.Rank);
        string r = lo == hi ? $"r={lo}" : $"r={lo}..{hi}";
        string dora = a.Modules.Any(m => m.IsDora) ? " (DoRA)" : "";
        string saved = a.SavedModules.Count > 0 ? $"; replaces {string.Join(", ", a.SavedModules)}" : "";
        return $"{r}{dora}, {a.ParameterCount:N0} parameters on {a.Layers.Count} projections{saved}";
    }

    /// <summary>Loads the model named by the options, reporting download progress on stderr.</summary>
    public static async Task<LoadedModel> LoadAsync(ParseResult parse, Option<string> model, Option<string?> tokenizer, TextWriter error, CancellationToken ct,
        ModelLoadOptions? options = null, EdgeTune.Security.EncryptionKey? key = null)
    {
        string reference = parse.GetValue(model)!;
        var progress = new Progress<DownloadProgress>(p =>
        {
            if (p.IsComplete && !p.FromCache) error.WriteLine($"downloaded {p.File} ({p.BytesDownloaded:N0} bytes)");
        });
        return await ModelLoader.LoadAsync(reference, parse.GetValue(tokenizer), null, progress, ct, options, key).ConfigureAwait(false);
    }
}
