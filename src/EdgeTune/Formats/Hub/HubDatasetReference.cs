namespace EdgeTune.Formats.Hub;

/// <summary>
/// A dataset on the Hugging Face Hub as <c>--data</c> names it:
/// <c>hf://datasets/org/name[@revision][/config][/split]</c>. The split defaults to <c>train</c> (a dataset whose files
/// name no split at all is taken whole); a revision that contains '/' is written escaped
/// (<c>@refs%2Fconvert%2Fparquet</c>), as huggingface_hub's file system does.
/// </summary>
public sealed record HubDatasetReference(HubRepoId Repo, string? Config = null, string? Split = null)
{
    /// <summary>The URL scheme of Hub references.</summary>
    public const string Scheme = "hf://";

    private const string DatasetsPrefix = Scheme + "datasets/";

    /// <summary>True for anything that starts with <c>hf://</c> (so a model or malformed reference is refused by
    /// <see cref="Parse"/> with the reason, not looked for as a local file).</summary>
    public static bool IsHubReference(string? text) => text is not null && text.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    /// <exception cref="FormatException">not <c>hf://datasets/org/name[@revision][/config][/split]</c>.</exception>
    public static HubDatasetReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        const string Form = "expected hf://datasets/org/name[@revision][/config][/split]";
        if (!text.StartsWith(DatasetsPrefix, StringComparison.OrdinalIgnoreCase))
            throw new FormatException($"'{text}': only Hub datasets can be training data; {Form}");
        string[] parts = text[DatasetsPrefix.Length..].TrimEnd('/').Split('/');
        if (parts.Length is < 2 or > 4 || parts.Any(p => p.Length == 0)) throw new FormatException($"'{text}': {Form}");
        string name = parts[1], revision = HubRepoId.DefaultRevision;
        int at = name.IndexOf('@');
        if (at >= 0)
        {
            revision = Uri.UnescapeDataString(name[(at + 1)..]);
            name = name[..at];
        }
        HubRepoId repo;
        try
        {
            repo = new HubRepoId(parts[0], name, revision, HubRepoType.Dataset);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"'{text}': {e.Message}", e);
        }
        return parts.Length switch
        {
            2 => new HubDatasetReference(repo),
            3 => new HubDatasetReference(repo, Split: parts[2]),
            _ => new HubDatasetReference(repo, parts[2], parts[3]),
        };
    }

    public override string ToString()
    {
        string rev = Repo.Revision == HubRepoId.DefaultRevision ? "" : "@" + Uri.EscapeDataString(Repo.Revision);
        return $"{DatasetsPrefix}{Repo.RepoId}{rev}{(Config is null ? "" : "/" + Config)}{(Split is null ? "" : "/" + Split)}";
    }
}
