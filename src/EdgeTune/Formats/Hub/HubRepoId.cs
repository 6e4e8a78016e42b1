using System.Text.RegularExpressions;

namespace EdgeTune.Formats.Hub;

/// <summary>The kind of a Hub repository: its URLs and cache folder differ.</summary>
public enum HubRepoType
{
    /// <summary>A model: <c>{endpoint}/org/name</c>, cache folder <c>models--org--name</c>.</summary>
    Model,
    /// <summary>A dataset: <c>{endpoint}/datasets/org/name</c>, cache folder <c>datasets--org--name</c>.</summary>
    Dataset,
}

/// <summary>
/// A model (or, with <see cref="HubRepoType.Dataset"/>, dataset) repository on the Hugging Face Hub, written <c>org/name</c> or <c>org/name@revision</c>
/// (a branch, a tag, a commit hash, or a ref such as <c>refs/pr/1</c>). The rules for the id are the
/// ones the Hub itself enforces: letters, digits, '-', '_' and '.', not starting or ending with '-' or
/// '.', no "--" or "..", at most 96 characters.
/// </summary>
public readonly partial record struct HubRepoId
{
    /// <summary>The default revision, as in huggingface_hub.</summary>
    public const string DefaultRevision = "main";

    /// <summary>The owner (user or organisation).</summary>
    public string Owner { get; }

    /// <summary>The repository name.</summary>
    public string Name { get; }

    /// <summary>The revision asked for (never empty; <see cref="DefaultRevision"/> when none was given).</summary>
    public string Revision { get; }

    public HubRepoId(string owner, string name, string revision = DefaultRevision, HubRepoType type = HubRepoType.Model)
    {
        if (!IsValidPart(owner)) throw new ArgumentException($"Hub repo id: owner '{owner}' is not a valid Hub name", nameof(owner));
        if (!IsValidPart(name)) throw new ArgumentException($"Hub repo id: name '{name}' is not a valid Hub name", nameof(name));
        if (owner.Length + 1 + name.Length > 96)
            throw new ArgumentException($"Hub repo id '{owner}/{name}' is longer than 96 characters", nameof(name));
        if (!IsValidRevision(revision))
            throw new ArgumentException($"Hub repo id: revision '{revision}' is not valid (empty, whitespace, '..' or a leading/trailing '/')", nameof(revision));
        if (!Enum.IsDefined(type)) throw new ArgumentOutOfRangeException(nameof(type), type, "unknown Hub repo type");
        Owner = owner;
        Name = name;
        Revision = revision;
        Type = type;
    }

    /// <summary>Model or dataset.</summary>
    public HubRepoType Type { get; }

    /// <summary><c>org/name</c>, as the Hub's URLs spell it.</summary>
    public string RepoId => Owner + "/" + Name;

    /// <summary>The cache folder name huggingface_hub uses: <c>models--org--name</c> or <c>datasets--org--name</c>.</summary>
    public string CacheFolderName => (Type == HubRepoType.Dataset ? "datasets--" : "models--") + Owner + "--" + Name;

    /// <summary>True when <see cref="Revision"/> is a full 40-character lowercase commit hash.</summary>
    public bool RevisionIsCommitHash => IsCommitHash(Revision);

    /// <summary>The same repository at another revision.</summary>
    public HubRepoId WithRevision(string revision) => new(Owner, Name, revision, Type);

    /// <summary>The same repository and revision as a dataset.</summary>
    public HubRepoId AsDataset() => new(Owner, Name, Revision, HubRepoType.Dataset);

    public override string ToString() =>
        (Type == HubRepoType.Dataset ? "datasets/" : "") + (Revision == DefaultRevision ? RepoId : RepoId + "@" + Revision);

    /// <summary>Parses <c>org/name</c> or <c>org/name@revision</c>; throws <see cref="FormatException"/>
    /// naming what is wrong.</summary>
    public static HubRepoId Parse(string text)
    {
        if (TryParse(text, out var id, out string? error)) return id;
        throw new FormatException(error);
    }

    /// <summary>Parses <c>org/name</c> or <c>org/name@revision</c> without throwing.</summary>
    public static bool TryParse(string? text, out HubRepoId id) => TryParse(text, out id, out _);

    private static bool TryParse(string? text, out HubRepoId id, out string? error)
    {
        id = default;
        if (string.IsNullOrWhiteSpace(text)) { error = "Hub repo id is empty (expected 'org/name' or 'org/name@revision')"; return false; }
        string repo = text;
        string revision = DefaultRevision;
        int at = text.IndexOf('@');
        if (at >= 0)
        {
            repo = text[..at];
            revision = text[(at + 1)..];
            if (!IsValidRevision(revision)) { error = $"Hub repo id '{text}': revision '{revision}' is not valid"; return false; }
        }
        int slash = repo.IndexOf('/');
        if (slash < 0 || slash != repo.LastIndexOf('/'))
        {
            error = $"Hub repo id '{text}' must have exactly one '/' (expected 'org/name' or 'org/name@revision')";
            return false;
        }
        string owner = repo[..slash], name = repo[(slash + 1)..];
        if (!IsValidPart(owner) || !IsValidPart(name) || repo.Length > 96)
        {
            error = $"Hub repo id '{text}' is not valid: use letters, digits, '-', '_' and '.', not starting or ending with '-' or '.', no '--' or '..', at most 96 characters";
            return false;
        }
        id = new HubRepoId(owner, name, revision);
        error = null;
        return true;
    }

    /// <summary>True for a full 40-character lowercase hex commit hash (what <c>refs/*</c> files hold).</summary>
    public static bool IsCommitHash(string? text) => text is not null && CommitHashRegex().IsMatch(text);

    private static bool IsValidPart(string? part) =>
        !string.IsNullOrEmpty(part) && PartRegex().IsMatch(part) && !part.Contains("--") && !part.Contains("..");

    private static bool IsValidRevision(string? revision) =>
        !string.IsNullOrEmpty(revision)
        && !revision.Any(char.IsWhiteSpace)
        && !revision.Contains("..")
        && !revision.Contains('\\')
        && !revision.StartsWith('/') && !revision.EndsWith('/');

    [GeneratedRegex("^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")]
    private static partial Regex PartRegex();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHashRegex();
}
