using System.Text.Json;
using EdgeTune.Formats.Hub.Internal;

namespace EdgeTune.Formats.Hub;

/// <summary>
/// Downloads files and model folders from the Hugging Face Hub into huggingface_hub's cache layout
/// (see <see cref="HubCache"/>), so an existing Python cache is used as is and Python uses ours.
/// <para>
/// A file is found by <c>HEAD {endpoint}/{repo}/resolve/{revision}/{file}</c> (commit from
/// <c>X-Repo-Commit</c>, etag from <c>X-Linked-Etag</c>/<c>ETag</c>, size from
/// <c>X-Linked-Size</c>/<c>Content-Length</c>, LFS bytes from the redirect target), then fetched
/// unless its snapshot entry or blob is already there. With <see cref="HubOptions.Offline"/> the
/// network is never used; when the network fails, the cache answers if it can.
/// </para>
/// The client never writes to the console; progress goes to <see cref="IProgress{T}"/>.
/// </summary>
public sealed class HubClient : IDisposable
{
    private readonly HubHttp _http;

    /// <param name="options">Settings; null means <see cref="HubOptions.FromEnvironment()"/>.</param>
    /// <param name="handler">HTTP handler (tests inject one). It should not follow redirects itself
    /// (<c>AllowAutoRedirect = false</c>): the client follows them, keeping the token on the Hub host.</param>
    /// <param name="disposeHandler">Whether disposing the client disposes <paramref name="handler"/>.</param>
    public HubClient(HubOptions? options = null, HttpMessageHandler? handler = null, bool disposeHandler = false)
    {
        Options = options ?? HubOptions.FromEnvironment();
        Cache = new HubCache(Options.CacheDirectory);
        _http = new HubHttp(Options, handler, disposeHandler);
    }

    public HubOptions Options { get; }

    public HubCache Cache { get; }

    public void Dispose() => _http.Dispose();

    /// <summary>The commit and file list of a revision (<c>GET {endpoint}/api/models/{repo}/revision/{revision}</c>).</summary>
    public async Task<HubRepoInfo> GetRepoInfoAsync(HubRepoId repo, CancellationToken ct = default)
    {
        ThrowIfOffline(repo, null);
        var uri = _http.RepoInfoUri(repo);
        using var response = await _http.SendMetadataAsync(HttpMethod.Get, uri, followAbsolute: false, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw HubHttp.ErrorFor(response, repo, null);
        byte[] body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            string? sha = root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            if (!HubRepoId.IsCommitHash(sha))
                throw new HubException(HubErrorKind.Network, $"Hub: {uri} answered without a commit hash in 'sha' (is HF_ENDPOINT a Hub?)");
            var files = new List<string>();
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
                foreach (var sibling in siblings.EnumerateArray())
                    if (sibling.TryGetProperty("rfilename", out var name) && name.GetString() is { Length: > 0 } n)
                        files.Add(n);
            return new HubRepoInfo(repo, sha!, files);
        }
        catch (JsonException e)
        {
            throw new HubException(HubErrorKind.Network, $"Hub: {uri} answered with invalid JSON: {e.Message}", e);
        }
    }

    /// <summary>What the Hub says about a file (HEAD on the resolve URL, without following a redirect to another host).</summary>
    public async Task<HubFileMetadata> GetFileMetadataAsync(HubRepoId repo, string filename, CancellationToken ct = default)
    {
        ThrowIfOffline(repo, filename);
        var uri = _http.ResolveUri(repo, filename);
        using var response = await _http.SendMetadataAsync(HttpMethod.Head, uri, followAbsolute: false, ct).ConfigureAwait(false);
        int status = (int)response.StatusCode;
        if (status is < 200 or > 399)
        {
            var error = HubHttp.ErrorFor(response, repo, filename);
            string? commitOf404 = HubHttp.Header(response, "X-Repo-Commit");
            if (status == 404 && HubHttp.Header(response, "X-Error-Code") == "EntryNotFound" && HubRepoId.IsCommitHash(commitOf404))
            {
                Cache.MarkMissing(repo, commitOf404!, filename); // as huggingface_hub: remembered for offline use
                Cache.WriteRef(repo, repo.Revision, commitOf404!);
            }
            throw error;
        }
        string? commit = HubHttp.Header(response, "X-Repo-Commit");
        string? etag = HubHttp.Header(response, "X-Linked-Etag") ?? HubHttp.Header(response, "ETag");
        if (!HubRepoId.IsCommitHash(commit) || string.IsNullOrEmpty(etag))
            throw new HubException(HubErrorKind.Network,
                $"Hub: {uri} answered without X-Repo-Commit/ETag headers (is HF_ENDPOINT a Hub, or a proxy stripping headers?)");
        long? size = long.TryParse(HubHttp.Header(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
        var download = uri;
        if (status is >= 300 and <= 399 && response.Headers.Location is { } location)
            download = location.IsAbsoluteUri ? location : new Uri(response.RequestMessage?.RequestUri ?? uri, location);
        return new HubFileMetadata(commit!, HubHttp.NormalizeEtag(etag), size, download);
    }

    /// <summary>
    /// The local path of <paramref name="filename"/> at the repo's revision, downloading it when needed
    /// (like <c>hf_hub_download</c>). The path is inside <c>snapshots/{commit}/</c>.
    /// </summary>
    /// <exception cref="HubException">Unauthorized (401/403), NotFound (404), NotInCache (offline or
    /// unreachable and not cached), Network, Integrity.</exception>
    public async Task<string> DownloadFileAsync(HubRepoId repo, string filename, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default)
    {
        HubCache.ToRelativePath(filename);
        if (Options.Offline)
        {
            string? cached = Cache.TryGetCachedFile(repo, filename);
            if (cached is not null) return ReportCached(cached, filename, progress);
            throw NotInCacheOffline(repo, filename);
        }
        if (repo.RevisionIsCommitHash && Cache.TryGetCachedFile(repo, filename) is string pinned)
            return ReportCached(pinned, filename, progress); // a commit never changes: no request needed

        HubFileMetadata meta;
        try
        {
            meta = await GetFileMetadataAsync(repo, filename, ct).ConfigureAwait(false);
        }
        catch (HubException e) when (e.Kind is HubErrorKind.Network or HubErrorKind.Unauthorized)
        {
            // As huggingface_hub: when the Hub cannot be asked, a cached copy of the revision answers.
            if (Cache.TryGetCachedFile(repo, filename) is string cached) return ReportCached(cached, filename, progress);
            if (e.Kind == HubErrorKind.Unauthorized) throw;
            throw new HubException(HubErrorKind.NotInCache,
                $"{e.Message}; and '{filename}' of {repo} is not in the cache ({Cache.RepoFolder(repo)}) either", e);
        }

        Cache.WriteRef(repo, repo.Revision, meta.CommitHash);
        string pointer = Cache.SnapshotFilePath(repo, meta.CommitHash, filename);
        if (File.Exists(pointer)) return ReportCached(pointer, filename, progress);

        string blob = Cache.BlobPath(repo, meta.Etag);
        if (File.Exists(blob))
        {
            Cache.LinkIntoSnapshot(blob, pointer, newBlob: false);
            return ReportCached(pointer, filename, progress);
        }

        using (await CacheFileLock.AcquireAsync(Cache.LockPath(repo, meta.Etag), ct).ConfigureAwait(false))
        {
            if (File.Exists(pointer)) return ReportCached(pointer, filename, progress); // another process finished it
            bool fresh = !File.Exists(blob);
            if (fresh)
                await BlobDownloader.DownloadAsync(_http, Options, meta.DownloadUri, blob, meta.Size,
                    meta.EtagIsSha256 ? meta.Etag : null, filename, progress, ct).ConfigureAwait(false);
            Cache.LinkIntoSnapshot(blob, pointer, newBlob: fresh);
        }
        return pointer;
    }

    /// <summary>Like <see cref="DownloadFileAsync"/>, but null when the file does not exist in the repo
    /// (404, or a <c>.no_exist</c> marker in the cache). For optional files such as tokenizer.model.</summary>
    public async Task<string?> TryDownloadFileAsync(HubRepoId repo, string filename, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default)
    {
        if (Options.Offline && Cache.IsKnownMissing(repo, filename)) return null;
        if (repo.RevisionIsCommitHash && Cache.IsKnownMissing(repo, filename)) return null;
        try
        {
            return await DownloadFileAsync(repo, filename, progress, ct).ConfigureAwait(false);
        }
        catch (HubException e) when (e.Kind == HubErrorKind.NotFound && e.ServerErrorCode is not ("RepoNotFound" or "RevisionNotFound"))
        {
            return null;
        }
    }

    /// <summary>
    /// Downloads a model folder (config, weights, tokenizer and generation files, see
    /// <see cref="HubModelFiles"/>) and returns <c>snapshots/{commit}</c>. Offline, or with a commit hash
    /// whose snapshot is complete, no request is made; when the Hub cannot be reached (or refuses with
    /// 401/403, as huggingface_hub also tolerates), a complete cached snapshot of the revision is returned.
    /// Files are fetched <see cref="HubOptions.MaxParallelDownloads"/> at a time, so
    /// <paramref name="progress"/> may be called from several threads at once.
    /// </summary>
    public async Task<string> DownloadModelAsync(HubRepoId repo, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        if (Options.Offline) return CachedModelOrThrow(repo, null);
        if (repo.RevisionIsCommitHash && Cache.TryGetSnapshotFolder(repo) is string pinned && HubModelFiles.MissingFiles(pinned).Count == 0)
            return pinned;

        HubRepoInfo info;
        try
        {
            info = await GetRepoInfoAsync(repo, ct).ConfigureAwait(false);
        }
        catch (HubException e) when (e.Kind is HubErrorKind.Network or HubErrorKind.Unauthorized)
        {
            return CachedModelOrThrow(repo, e);
        }

        Cache.WriteRef(repo, repo.Revision, info.CommitHash);
        var atCommit = repo.WithRevision(info.CommitHash);
        var files = HubModelFiles.Select(info.Files);
        if (files.Count == 0 || !files.Contains(HubModelFiles.Config))
            throw new HubException(HubErrorKind.NotFound,
                $"Hub: {repo} has no config.json and .safetensors weights (files: {string.Join(", ", info.Files.Take(20))}); EdgeTune loads safetensors models");

        await DownloadAllAsync(atCommit, files, progress, ct).ConfigureAwait(false);
        if (files.Contains(HubModelFiles.SafetensorsIndex))
        {
            string index = Cache.SnapshotFilePath(repo, info.CommitHash, HubModelFiles.SafetensorsIndex);
            await DownloadAllAsync(atCommit, HubModelFiles.ShardsFromIndex(index), progress, ct).ConfigureAwait(false);
        }
        return Cache.SnapshotFolder(repo, info.CommitHash);
    }

    /// <summary>
    /// Downloads the data files of a dataset's split (see <see cref="HubDatasetFiles"/>) into the cache and returns their
    /// local paths, sorted. The file list comes from <c>GET {endpoint}/api/datasets/{repo}/revision/{revision}</c>; a
    /// repository without data files at the default revision is read from the Hub's Parquet conversion
    /// (<see cref="HubDatasetFiles.ParquetConversionRevision"/>). Offline, or when the Hub cannot be reached, the split
    /// comes from the cache when every one of its files is there.
    /// </summary>
    /// <exception cref="HubException">NotFound (no such dataset, config or split), NotInCache, Unauthorized, Network, Integrity.</exception>
    public async Task<IReadOnlyList<string>> DownloadDatasetAsync(HubDatasetReference dataset, IProgress<DownloadProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var repo = dataset.Repo.AsDataset();
        if (Options.Offline) return CachedDatasetOrThrow(dataset, repo, null);
        HubRepoInfo info;
        try
        {
            info = await GetRepoInfoAsync(repo, ct).ConfigureAwait(false);
            if (HubDatasetFiles.DataFiles(info.Files).Count == 0 && repo.Revision == HubRepoId.DefaultRevision)
            {
                Cache.WriteRef(repo, repo.Revision, info.CommitHash);
                Cache.WriteDataFileList(repo, info.CommitHash, []); // offline, an empty list sends the lookup to the conversion too
                repo = repo.WithRevision(HubDatasetFiles.ParquetConversionRevision);
                info = await GetRepoInfoAsync(repo, ct).ConfigureAwait(false);
            }
        }
        catch (HubException e) when (e.Kind is HubErrorKind.Network or HubErrorKind.Unauthorized)
        {
            return CachedDatasetOrThrow(dataset, dataset.Repo.AsDataset(), e);
        }
        Cache.WriteRef(repo, repo.Revision, info.CommitHash);
        var dataFiles = HubDatasetFiles.DataFiles(info.Files);
        Cache.WriteDataFileList(repo, info.CommitHash, dataFiles);
        var selected = HubDatasetFiles.Select(dataFiles, dataset);
        await DownloadAllAsync(repo.WithRevision(info.CommitHash), selected, progress, ct).ConfigureAwait(false);
        return selected.Select(f => Cache.SnapshotFilePath(repo, info.CommitHash, f)).ToArray();
    }

    private IReadOnlyList<string> CachedDatasetOrThrow(HubDatasetReference dataset, HubRepoId repo, HubException? cause)
    {
        var listed = Cache.TryReadDataFileList(repo);
        if (listed is { Count: 0 } && repo.Revision == HubRepoId.DefaultRevision)
        {
            repo = repo.WithRevision(HubDatasetFiles.ParquetConversionRevision);
            listed = Cache.TryReadDataFileList(repo);
        }
        string why = cause is null
            ? "offline mode is on (HF_HUB_OFFLINE=1 or the offline option), so nothing can be downloaded; run once online, or unset HF_HUB_OFFLINE"
            : $"the Hub could not be reached ({cause.Message})";
        if (listed is null)
        {
            if (cause is { Kind: HubErrorKind.Unauthorized }) throw cause;
            throw new HubException(HubErrorKind.NotInCache, $"Hub: dataset {dataset} is not in the cache ({Cache.RepoFolder(repo)}) and {why}", cause);
        }
        var selected = HubDatasetFiles.Select(listed, dataset);
        var paths = selected.Select(f => Cache.TryGetCachedFile(repo, f)).ToArray();
        var missing = selected.Where((f, i) => paths[i] is null).ToArray();
        if (missing.Length > 0)
        {
            if (cause is { Kind: HubErrorKind.Unauthorized }) throw cause;
            throw new HubException(HubErrorKind.NotInCache,
                $"Hub: dataset {dataset} is not complete in the cache ({Cache.RepoFolder(repo)}; missing: {string.Join(", ", missing.Take(10))}) and {why}", cause);
        }
        return paths!;
    }

    private async Task DownloadAllAsync(HubRepoId atCommit, IReadOnlyList<string> files, IProgress<DownloadProgress>? progress,
        CancellationToken ct)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Options.MaxParallelDownloads), CancellationToken = ct };
        await Parallel.ForEachAsync(files, parallel,
            async (file, token) => await DownloadFileAsync(atCommit, file, progress, token).ConfigureAwait(false)).ConfigureAwait(false);
    }

    private string CachedModelOrThrow(HubRepoId repo, HubException? cause)
    {
        string? folder = Cache.TryGetSnapshotFolder(repo);
        var missing = folder is null ? [HubModelFiles.Config] : HubModelFiles.MissingFiles(folder);
        if (folder is not null && missing.Count == 0) return folder;
        if (cause is { Kind: HubErrorKind.Unauthorized }) throw cause;
        string where = folder ?? Cache.RepoFolder(repo);
        string why = cause is null
            ? "offline mode is on (HF_HUB_OFFLINE=1 or the offline option), so nothing can be downloaded; run once online, or unset HF_HUB_OFFLINE"
            : $"the Hub could not be reached ({cause.Message})";
        throw new HubException(HubErrorKind.NotInCache,
            $"Hub: model {repo} is not complete in the cache ({where}; missing: {string.Join(", ", missing)}) and {why}", cause);
    }

    private void ThrowIfOffline(HubRepoId repo, string? filename)
    {
        if (Options.Offline) throw NotInCacheOffline(repo, filename);
    }

    private HubException NotInCacheOffline(HubRepoId repo, string? filename) => new(HubErrorKind.NotInCache,
        $"Hub: {(filename is null ? "" : $"'{filename}' of ")}{repo} is not in the cache ({Cache.RepoFolder(repo)}) and offline mode is on " +
        "(HF_HUB_OFFLINE=1 or the offline option); run once online, or unset HF_HUB_OFFLINE");

    private static string ReportCached(string path, string filename, IProgress<DownloadProgress>? progress)
    {
        if (progress is not null)
        {
            // A snapshot entry is usually a symlink into blobs/: report the blob's size, not the link's.
            var info = new FileInfo(path);
            long length = (info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info).Length;
            progress.Report(new DownloadProgress(filename, length, length, FromCache: true));
        }
        return path;
    }
}
