using System.Collections.Concurrent;

namespace EdgeTune.Formats.Hub;

/// <summary>
/// The on-disk cache layout of Python's huggingface_hub, shared both ways:
/// <code>
/// {root}/models--{org}--{name}/
///     blobs/{etag}                          the bytes (etag = sha256 for LFS files, git oid otherwise)
///     blobs/{etag}.incomplete               a partial download, resumed with a Range request
///     snapshots/{commit}/{file}             relative symlink to ../../blobs/{etag} (a copy where
///                                           symlinks cannot be made)
///     refs/{revision}                       the commit hash the revision pointed to last time
///     .no_exist/{commit}/{file}             empty marker: the file does not exist at that commit
/// {root}/.locks/models--{org}--{name}/{etag}.lock   exclusive lock while a blob is written
/// </code>
/// Datasets live beside models in <c>datasets--{org}--{name}/</c>, laid out the same. EdgeTune adds
/// <c>.edgetune/data_files/{commit}</c> there: the data files the Hub listed at that commit, one per line, so a split
/// can be found complete (or not) offline; huggingface_hub ignores it.
/// </summary>
public sealed class HubCache
{
    private static readonly ConcurrentDictionary<string, bool> SymlinkSupport = new(StringComparer.Ordinal);

    public HubCache(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>Tests force the no-symlink path (copies) with false.</summary>
    internal bool? SymlinksOverride { get; init; }

    /// <summary>The cache root (absolute).</summary>
    public string Root { get; }

    /// <summary><c>{root}/models--org--name</c>.</summary>
    public string RepoFolder(HubRepoId repo) => Path.Combine(Root, repo.CacheFolderName);

    /// <summary><c>blobs/{etag}</c>.</summary>
    public string BlobPath(HubRepoId repo, string etag)
    {
        if (string.IsNullOrEmpty(etag) || etag.IndexOfAny(['/', '\\']) >= 0 || etag.Contains(".."))
            throw new HubException(HubErrorKind.Network, $"Hub {repo}: the server sent an unusable etag '{etag}'");
        return Path.Combine(RepoFolder(repo), "blobs", etag);
    }

    /// <summary><c>snapshots/{commit}</c>.</summary>
    public string SnapshotFolder(HubRepoId repo, string commit)
    {
        if (!HubRepoId.IsCommitHash(commit))
            throw new ArgumentException($"Hub {repo}: '{commit}' is not a 40-character commit hash", nameof(commit));
        return Path.Combine(RepoFolder(repo), "snapshots", commit);
    }

    /// <summary><c>snapshots/{commit}/{file}</c> (file may contain '/').</summary>
    public string SnapshotFilePath(HubRepoId repo, string commit, string filename) =>
        Path.Combine(SnapshotFolder(repo, commit), ToRelativePath(filename));

    /// <summary><c>refs/{revision}</c> (a revision such as <c>refs/pr/1</c> nests folders, as in Python).</summary>
    public string RefPath(HubRepoId repo, string revision) =>
        Path.Combine(RepoFolder(repo), "refs", ToRelativePath(revision));

    /// <summary><c>.no_exist/{commit}/{file}</c>.</summary>
    public string NoExistPath(HubRepoId repo, string commit, string filename) =>
        Path.Combine(RepoFolder(repo), ".no_exist", commit, ToRelativePath(filename));

    /// <summary><c>{root}/.locks/models--org--name/{etag}.lock</c>.</summary>
    public string LockPath(HubRepoId repo, string etag) =>
        Path.Combine(Root, ".locks", repo.CacheFolderName, etag + ".lock");

    /// <summary>The commit the repo's revision resolves to from the cache alone: the revision itself when
    /// it is a commit hash, else the content of <c>refs/{revision}</c>; null when unknown.</summary>
    public string? TryResolveCommit(HubRepoId repo)
    {
        if (repo.RevisionIsCommitHash) return repo.Revision;
        string path = RefPath(repo, repo.Revision);
        try
        {
            if (!File.Exists(path)) return null;
            string commit = File.ReadAllText(path).Trim();
            return HubRepoId.IsCommitHash(commit) ? commit : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>The snapshot folder for the repo's revision when it is in the cache, else null.</summary>
    public string? TryGetSnapshotFolder(HubRepoId repo)
    {
        string? commit = TryResolveCommit(repo);
        if (commit is null) return null;
        string folder = SnapshotFolder(repo, commit);
        return Directory.Exists(folder) ? folder : null;
    }

    /// <summary>The cached path of a file at the repo's revision (a snapshot entry whose target exists),
    /// or null when it is not cached. Never touches the network.</summary>
    public string? TryGetCachedFile(HubRepoId repo, string filename)
    {
        string? commit = TryResolveCommit(repo);
        if (commit is null) return null;
        string path = SnapshotFilePath(repo, commit, filename);
        return File.Exists(path) ? path : null; // File.Exists follows links: a dangling link is "not cached"
    }

    /// <summary>True when a <c>.no_exist</c> marker says the file is absent at the revision's commit.</summary>
    public bool IsKnownMissing(HubRepoId repo, string filename)
    {
        string? commit = TryResolveCommit(repo);
        return commit is not null && File.Exists(NoExistPath(repo, commit, filename));
    }

    /// <summary>Records that <paramref name="revision"/> points to <paramref name="commit"/>
    /// (writes <c>refs/{revision}</c> unless the revision is the commit itself or the file already says so).</summary>
    public void WriteRef(HubRepoId repo, string revision, string commit)
    {
        if (revision == commit) return;
        string path = RefPath(repo, revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(tmp, commit);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Writes the empty <c>.no_exist/{commit}/{file}</c> marker.</summary>
    public void MarkMissing(HubRepoId repo, string commit, string filename)
    {
        string path = NoExistPath(repo, commit, filename);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (File.Open(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite)) { }
    }

    /// <summary><c>.edgetune/data_files/{commit}</c> of a dataset repo.</summary>
    public string DataFileListPath(HubRepoId repo, string commit)
    {
        if (!HubRepoId.IsCommitHash(commit))
            throw new ArgumentException($"Hub {repo}: '{commit}' is not a 40-character commit hash", nameof(commit));
        return Path.Combine(RepoFolder(repo), ".edgetune", "data_files", commit);
    }

    /// <summary>Records the data files of a dataset at a commit (see the class remarks).</summary>
    public void WriteDataFileList(HubRepoId repo, string commit, IEnumerable<string> files)
    {
        string path = DataFileListPath(repo, commit);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllLines(tmp, files);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The data files recorded for the revision's commit, or null when none were recorded.</summary>
    public IReadOnlyList<string>? TryReadDataFileList(HubRepoId repo)
    {
        string? commit = TryResolveCommit(repo);
        if (commit is null) return null;
        string path = DataFileListPath(repo, commit);
        try
        {
            return File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0).ToArray() : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Makes <paramref name="pointerPath"/> (a snapshot entry) point at <paramref name="blobPath"/>: a relative
    /// symlink where the file system allows it, else a copy of the blob (or, for a blob that was just
    /// downloaded, a move), as huggingface_hub does.
    /// </summary>
    public void LinkIntoSnapshot(string blobPath, string pointerPath, bool newBlob)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(pointerPath)!);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(pointerPath)!, blobPath);
        if (SymlinksSupported())
        {
            string tmpLink = pointerPath + "." + Guid.NewGuid().ToString("N") + ".tmp";
            File.CreateSymbolicLink(tmpLink, relative);
            File.Move(tmpLink, pointerPath, overwrite: true); // rename(2) replaces atomically
            return;
        }
        string tmp = pointerPath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        if (newBlob) File.Move(blobPath, tmp);
        else File.Copy(blobPath, tmp, overwrite: true);
        File.Move(tmp, pointerPath, overwrite: true);
    }

    /// <summary>Whether symlinks can be created under the cache root (probed once per root).</summary>
    public bool SymlinksSupported() => SymlinksOverride ?? SymlinkSupport.GetOrAdd(Root, static root =>
    {
        Directory.CreateDirectory(root);
        string probe = Path.Combine(root, ".edgetune-symlink-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(probe);
            string target = Path.Combine(probe, "target");
            File.WriteAllText(target, "");
            File.CreateSymbolicLink(Path.Combine(probe, "link"), "target");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return false;
        }
        finally
        {
            try { Directory.Delete(probe, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    });

    /// <summary>A repo-relative name ("a/b.json") as a safe relative OS path; rejects absolute paths and "..".</summary>
    internal static string ToRelativePath(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        string[] parts = name.Split('/');
        foreach (string part in parts)
        {
            if (part.Length == 0 || part == "." || part == ".." || part.IndexOfAny(['\\', ':', '\0']) >= 0)
                throw new ArgumentException($"Hub file name '{name}' is not a safe relative path");
        }
        return Path.Combine(parts);
    }
}
