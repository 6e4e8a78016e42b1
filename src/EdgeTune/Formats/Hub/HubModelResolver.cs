namespace EdgeTune.Formats.Hub;

/// <summary>What a <c>--model</c> argument names.</summary>
public enum ModelReferenceKind
{
    /// <summary>An existing local folder.</summary>
    LocalDirectory,
    /// <summary>An existing local file (a .gguf, a .bin checkpoint, a .safetensors).</summary>
    LocalFile,
    /// <summary>A Hub repository id, <c>org/name[@revision]</c>.</summary>
    HubRepo,
}

/// <summary>
/// Turns a user's model reference into a local path: an existing directory or file is used as is
/// (a local folder wins over a Hub id of the same spelling); otherwise <c>org/name[@revision]</c> is
/// downloaded (or found in the cache) with <see cref="HubClient.DownloadModelAsync"/>.
/// </summary>
public static class HubModelResolver
{
    /// <summary>Classifies a reference without network access. Throws <see cref="FileNotFoundException"/>
    /// for something that looks like a path but does not exist, and <see cref="ArgumentException"/> for
    /// something that is neither a path nor a Hub id.</summary>
    public static ModelReferenceKind Classify(string reference)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reference);
        if (Directory.Exists(reference)) return ModelReferenceKind.LocalDirectory;
        if (File.Exists(reference)) return ModelReferenceKind.LocalFile;
        if (LooksLikePath(reference))
            throw new FileNotFoundException($"Model path '{reference}' does not exist (full path: {Path.GetFullPath(reference)})", reference);
        if (HubRepoId.TryParse(reference, out _)) return ModelReferenceKind.HubRepo;
        throw new ArgumentException(
            $"Model '{reference}' is neither an existing local file or folder nor a Hub id of the form 'org/name' or 'org/name@revision'",
            nameof(reference));
    }

    /// <summary>The local folder (or file) for a reference; a Hub id is downloaded through <paramref name="client"/>
    /// and its snapshot folder returned. Local paths come back as full paths.</summary>
    public static async Task<string> ResolveAsync(string reference, HubClient client, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return Classify(reference) switch
        {
            ModelReferenceKind.HubRepo => await client.DownloadModelAsync(HubRepoId.Parse(reference), progress, ct).ConfigureAwait(false),
            _ => Path.GetFullPath(reference),
        };
    }

    /// <summary>As <see cref="ResolveAsync(string, HubClient, IProgress{DownloadProgress}?, CancellationToken)"/>
    /// with a client built from <paramref name="options"/> (null: the environment); no client is made for a local path.</summary>
    public static async Task<string> ResolveAsync(string reference, HubOptions? options = null, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default)
    {
        if (Classify(reference) != ModelReferenceKind.HubRepo) return Path.GetFullPath(reference);
        using var client = new HubClient(options);
        return await ResolveAsync(reference, client, progress, ct).ConfigureAwait(false);
    }

    private static bool LooksLikePath(string s) =>
        Path.IsPathRooted(s) || s.StartsWith('.') || s.StartsWith('~') || s.Contains('\\')
        || s.Count(c => c == '/') > 1 && !s.Contains('@');
}
