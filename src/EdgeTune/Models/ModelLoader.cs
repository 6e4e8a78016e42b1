using EdgeTune.Formats;
using EdgeTune.Formats.Hub;
using EdgeTune.Text;

namespace EdgeTune.Models;

/// <summary>A model with what it came with: config, tokenizer (when found) and chat template.</summary>
public sealed class LoadedModel(ICausalLM model, HfConfig config, ITokenizer? tokenizer, ChatTemplate? chatTemplate, string source) : IDisposable
{
    public ICausalLM Model { get; } = model;
    public HfConfig Config { get; } = config;
    public ITokenizer? Tokenizer { get; } = tokenizer;
    public ChatTemplate? ChatTemplate { get; } = chatTemplate;

    /// <summary>The local path the model was read from.</summary>
    public string Source { get; } = source;

    /// <summary>The tokenizer, or an error telling the user to name one.</summary>
    public ITokenizer RequireTokenizer() => Tokenizer ?? throw new InvalidOperationException(
        $"no tokenizer found for '{Source}': pass --tokenizer with a tokenizer.json, tokenizer.model, llama2.c tokenizer.bin or a .gguf that embeds one");

    /// <summary>Ids that end generation: the tokenizer's EOS and the config's eos_token_id(s).</summary>
    public IReadOnlySet<int> StopIds() => StopIdsOf(Config, Tokenizer);

    /// <summary>The tokenizer's EOS and the config's eos_token_id(s).</summary>
    public static IReadOnlySet<int> StopIdsOf(HfConfig config, ITokenizer? tokenizer)
    {
        var ids = new HashSet<int>(config.EosTokenIds);
        if (tokenizer?.EosId is int e) ids.Add(e);
        return ids;
    }

    public void Dispose() => Model.Dispose();
}

/// <summary>Opens a model from a local folder (safetensors + config.json), a GGUF or llama2.c file, or a Hub id.</summary>
public static class ModelLoader
{
    /// <param name="reference">A folder, a file, or <c>org/name[@revision]</c> on the Hugging Face Hub.</param>
    /// <param name="tokenizerPath">A tokenizer file or folder; default: the model's folder.</param>
    /// <param name="key">The key of an encrypted run folder the model is in (<see cref="Security.RunFiles"/>); null for plain models.</param>
    public static async Task<LoadedModel> LoadAsync(string reference, string? tokenizerPath = null, HubOptions? hub = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default, ModelLoadOptions? options = null,
        Security.EncryptionKey? key = null)
    {
        // A local folder inside an encrypted run folder is never a Hub id; look before resolving.
        if ((Directory.Exists(reference) || File.Exists(reference)) && Security.RunFiles.FindEncryptedRoot(reference) is not null)
            return Load(reference, tokenizerPath, options, key);
        string local = await HubModelResolver.ResolveAsync(reference, hub, progress, cancellationToken).ConfigureAwait(false);
        return Load(local, tokenizerPath, options, key);
    }

    /// <summary>Opens a local model folder or file.</summary>
    /// <remarks>
    /// The tokenizer comes from <paramref name="tokenizerPath"/> when given (a tokenizer file or folder, or a .gguf whose
    /// embedded tokenizer is used), else from the model's folder, else, for a GGUF model, from the tokenizer and chat
    /// template embedded in its metadata (<see cref="GgufTokenizer"/>). A tokenizer with more ids than the model's
    /// embedding has rows is refused here, naming both; a smaller one is fine (embeddings are often padded).
    /// </remarks>
    /// <exception cref="InvalidDataException">The tokenizer's vocabulary is larger than the model's.</exception>
    public static LoadedModel Load(string path, string? tokenizerPath = null, ModelLoadOptions? options = null) => Load(path, tokenizerPath, options, null);

    /// <summary>As <see cref="Load(string, string?, ModelLoadOptions?)"/>; a model folder inside an encrypted run folder
    /// (<see cref="Security.RunFiles"/>) is read with <paramref name="key"/> (refused without it): config.json and
    /// model.safetensors decrypted into memory, the tokenizer from <paramref name="tokenizerPath"/> or the folder's
    /// encrypted llama2.c tokenizer.bin.</summary>
    public static LoadedModel Load(string path, string? tokenizerPath, ModelLoadOptions? options, Security.EncryptionKey? key)
    {
        var files = Security.RunFiles.ForReading(path, key);
        if (files.IsEncrypted) return LoadEncrypted(path, tokenizerPath, options, files);
        var reader = CheckpointReader.Open(path);
        ICausalLM model;
        HfConfig config;
        try
        {
            config = CheckpointReader.ConfigFor(reader);
            model = ModelRegistry.Create(reader, config, options);
            if (model is DecoderModel d) config = d.Config; // as the family read it (a GGUF's family settings included)
        }
        catch
        {
            reader.Dispose();
            throw;
        }
        try
        {
            // The model owns the reader now; a GGUF's metadata stays readable whatever the model did with its mapping.
            var (tokenizer, template, tokenizerSource) = LoadTokenizer(path, reader, tokenizerPath);
            if (tokenizer is not null) CheckVocabularies(path, model.VocabSize, tokenizerSource!, tokenizer.VocabSize);
            return new LoadedModel(model, config, tokenizer, template, path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadEncrypted(string path, string? tokenizerPath, ModelLoadOptions? options, Security.RunFiles files)
    {
        bool folder = Directory.Exists(path);
        string dir = folder ? Path.GetFullPath(path) : Path.GetDirectoryName(Path.GetFullPath(path))!;
        string weights = folder ? Path.Combine(dir, SafeTensorsCheckpoint.SingleFileName) : path;
        if (!File.Exists(weights))
            throw new FileNotFoundException($"encrypted model '{path}': {weights} does not exist (an encrypted run folder's model is a single model.safetensors)", weights);
        string configPath = Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"encrypted model '{path}': config file '{configPath}' does not exist", configPath);
        var config = HfConfig.Parse(files.ReadAllText(configPath), configPath);
        var reader = SafeTensorsCheckpoint.FromFile(files.OpenSafeTensors(weights));
        ICausalLM model;
        try
        {
            model = ModelRegistry.Create(reader, config, options);
            if (model is DecoderModel d) config = d.Config;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
        try
        {
            ITokenizer? tokenizer = null;
            ChatTemplate? template = null;
            string? source = null;
            if (tokenizerPath is not null)
                (tokenizer, template, source) = LoadTokenizer(path, reader, tokenizerPath);
            else if (File.Exists(Path.Combine(dir, "tokenizer.bin")))
            {
                source = Path.Combine(dir, "tokenizer.bin");
                tokenizer = Llama2cTokenizer.Parse(files.ReadAllBytes(source), source);
            }
            else if (ModelExporterTokenizerFiles.Any(n => File.Exists(Path.Combine(dir, n))))
                throw new NotSupportedException(
                    $"encrypted model '{path}': its tokenizer files are encrypted and only a llama2.c tokenizer.bin is read from an encrypted folder; " +
                    "pass the base model's tokenizer with --tokenizer");
            if (tokenizer is not null) CheckVocabularies(path, model.VocabSize, source!, tokenizer.VocabSize);
            return new LoadedModel(model, config, tokenizer, template, path);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static readonly string[] ModelExporterTokenizerFiles = ["tokenizer.json", "tokenizer.model", "vocab.json"];

    /// <summary>
    /// Refuses a tokenizer that can produce ids the model has no embedding row for (they would fail later, inside the
    /// embedding lookup, on the first such id). A tokenizer smaller than the model is fine.
    /// </summary>
    /// <exception cref="InvalidDataException">Naming both files and both sizes.</exception>
    public static void CheckVocabularies(string modelPath, int modelVocabSize, string tokenizerPath, int tokenizerVocabSize)
    {
        if (tokenizerVocabSize <= modelVocabSize) return;
        throw new InvalidDataException(
            $"tokenizer '{tokenizerPath}' has {tokenizerVocabSize} token ids (added tokens included) but the vocabulary of model '{modelPath}' " +
            $"has only {modelVocabSize} (its embedding rows): ids {modelVocabSize}..{tokenizerVocabSize - 1} would have no embedding. " +
            "Use the tokenizer that belongs to this model (--tokenizer).");
    }

    private static (ITokenizer? Tokenizer, ChatTemplate? Template, string? Source) LoadTokenizer(string path, ICheckpointReader reader, string? tokenizerPath)
    {
        if (tokenizerPath is null && reader is GgufFile gguf)
        {
            var embedded = GgufTokenizer.Read(gguf);
            return (embedded?.Tokenizer, embedded?.ChatTemplate, path);
        }
        string? source = tokenizerPath ?? (Directory.Exists(path) ? path : null);
        if (source is null) return (null, null, null);
        if (File.Exists(source) && source.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            var fromGguf = GgufTokenizer.Read(source);
            return (fromGguf.Tokenizer, fromGguf.ChatTemplate, source);
        }
        ITokenizer tokenizer = TokenizerLoader.Load(source);
        ChatTemplate? template = null;
        string folder = Directory.Exists(source) ? source : Path.GetDirectoryName(Path.GetFullPath(source))!;
        string cfgPath = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(cfgPath)) template = ChatTemplate.Load(cfgPath);
        return (tokenizer, template, source);
    }
}
