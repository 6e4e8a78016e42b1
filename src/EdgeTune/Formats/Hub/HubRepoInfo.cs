namespace EdgeTune.Formats.Hub;

/// <summary>
/// What <c>GET {endpoint}/api/models/{repo}/revision/{revision}</c> says: the commit hash the revision
/// resolves to (<c>sha</c>) and the repository's files (<c>siblings[].rfilename</c>).
/// </summary>
public sealed record HubRepoInfo(HubRepoId Repo, string CommitHash, IReadOnlyList<string> Files);
