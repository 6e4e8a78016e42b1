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
    public static async Task<LoadedModel> LoadAsync(string reference, string? tokenizerPath = null, HubOptions? hub = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default, ModelLoadOptions? options = null)
    {
        string local = await HubModelResolver.ResolveAsync(reference, hub, progress, cancellationToken).ConfigureAwait(false);
        return Load(local, tokenizerPath, options);
    }

    /// <summary>Opens a local model folder or file.</summary>
    /// <remarks>
    /// The tokenizer comes from <paramref name="tokenizerPath"/> when given (a tokenizer file or folder, or a .gguf whose
    /// embedded tokenizer is used), else from the model's folder, else, for a GGUF model, from the tokenizer and chat
    /// template embedded in its metadata (<see cref="GgufTokenizer"/>). A tokenizer with more ids than the model's
    /// embedding has rows is refused here, naming both; a smaller one is fine (embeddings are often padded).
    /// </remarks>
    /// <exception cref="InvalidDataException">The tokenizer's vocabulary is larger than the model's.</exception>
    public static LoadedModel Load(string path, string? tokenizerPath = null, ModelLoadOptions? options = null)
    {
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
