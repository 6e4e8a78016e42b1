using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubClientCacheTests
{
    [Fact]
    public async Task Offline_UsesTheCache_AndNeverConnects()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        string online;
        using (var client = HubTestKit.Client(hub, cache.Path)) online = await client.DownloadModelAsync(HubRepoId.Parse("org/tiny"));
        hub.ClearRequests();

        using var offline = HubTestKit.Client(hub, cache.Path, offline: true);
        string folder = await offline.DownloadModelAsync(HubRepoId.Parse("org/tiny"));
        string config = await offline.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "config.json");
        string pinned = await offline.DownloadModelAsync(HubRepoId.Parse("org/tiny@" + repo.Commit));

        Assert.Equal(online, folder);
        Assert.Equal(online, pinned);
        Assert.Equal(repo.Files["config.json"].Bytes, File.ReadAllBytes(config));
        var missing = await Assert.ThrowsAsync<HubException>(() => offline.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "README.md"));
        Assert.Equal(HubErrorKind.NotInCache, missing.Kind);
        Assert.Contains("offline", missing.Message);
        Assert.Contains("README.md", missing.Message);
        Assert.Empty(hub.AllRequests);
    }

    [Fact]
    public async Task Offline_EmptyCache_SaysNotInCacheAndOffline()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var offline = HubTestKit.Client(hub, cache.Path, offline: true);

        var e = await Assert.ThrowsAsync<HubException>(() => offline.DownloadModelAsync(HubRepoId.Parse("org/tiny")));
        Assert.Equal(HubErrorKind.NotInCache, e.Kind);
        Assert.Contains("not complete in the cache", e.Message);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        await Assert.ThrowsAsync<HubException>(() => offline.GetRepoInfoAsync(HubRepoId.Parse("org/tiny")));
        Assert.Empty(hub.AllRequests);
    }

    [Fact]
    public async Task NetworkDown_FallsBackToCachedFiles()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        string online;
        using (var client = HubTestKit.Client(hub, cache.Path)) online = await client.DownloadModelAsync(HubRepoId.Parse("org/tiny"));

        using var unreachable = HubTestKit.Client(HubTestKit.DeadEndpoint(), cache.Path);
        Assert.Equal(online, await unreachable.DownloadModelAsync(HubRepoId.Parse("org/tiny")));
        string tokenizer = await unreachable.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "tokenizer.json");
        Assert.Equal(repo.Files["tokenizer.json"].Bytes, File.ReadAllBytes(tokenizer));

        var e = await Assert.ThrowsAsync<HubException>(() => unreachable.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "README.md"));
        Assert.Equal(HubErrorKind.NotInCache, e.Kind);
        var other = await Assert.ThrowsAsync<HubException>(() => unreachable.DownloadModelAsync(HubRepoId.Parse("org/other")));
        Assert.Equal(HubErrorKind.NotInCache, other.Kind);
        Assert.Contains("could not be reached", other.Message);
    }

    /// <summary>Builds a cache the way Python's huggingface_hub leaves it (relative symlinks, or copies
    /// where symlinks are unavailable) without this library's help.</summary>
    private static void WritePythonCache(string root, FakeRepo repo, bool useCopies)
    {
        string repoDir = Path.Combine(root, "models--" + repo.Id.Replace("/", "--"));
        string blobs = Path.Combine(repoDir, "blobs"), snapshot = Path.Combine(repoDir, "snapshots", repo.Commit);
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(repoDir, "refs"));
        File.WriteAllText(Path.Combine(repoDir, "refs", "main"), repo.Commit);
        foreach (string name in HubTestKit.ModelFiles)
        {
            string etag = repo.EtagOf(name);
            File.WriteAllBytes(Path.Combine(blobs, etag), repo.Files[name].Bytes);
            string entry = Path.Combine(snapshot, name);
            if (useCopies) File.WriteAllBytes(entry, repo.Files[name].Bytes);
            else File.CreateSymbolicLink(entry, Path.Combine("..", "..", "blobs", etag));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PythonCache_IsReusedWithoutDownloads(bool useCopies)
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        if (!useCopies && !new HubCache(cache.Path).SymlinksSupported()) useCopies = true;
        WritePythonCache(cache.Path, repo, useCopies);
        string expected = Path.Combine(cache.Path, "models--org--tiny", "snapshots", repo.Commit);
        using var client = HubTestKit.Client(hub, cache.Path);

        // pinned to the commit: not a single request
        Assert.Equal(expected, await client.DownloadModelAsync(HubRepoId.Parse("org/tiny@" + repo.Commit)));
        Assert.Empty(hub.AllRequests);

        // by branch: one listing request to learn that main still points there, no file request
        Assert.Equal(expected, await client.DownloadModelAsync(HubRepoId.Parse("org/tiny")));
        var only = Assert.Single(hub.AllRequests);
        Assert.Contains("/api/models/org/tiny/revision/main", only.Target);

        // and the resolver finds the same folder
        hub.ClearRequests();
        Assert.Equal(expected, await HubModelResolver.ResolveAsync("org/tiny@" + repo.Commit, client));
        Assert.Empty(hub.AllRequests);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(false)]
    public async Task LinkIntoSnapshot_AndRefs_ResolveCachedFiles(bool? symlinks)
    {
        using var dir = new TempDir();
        var cache = new HubCache(dir.Path) { SymlinksOverride = symlinks };
        var id = HubRepoId.Parse("org/m");
        string commit = new('a', 40);
        string blob = cache.BlobPath(id, "e1"), newBlob = cache.BlobPath(id, "e2");
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        await File.WriteAllTextAsync(blob, "bytes");
        await File.WriteAllTextAsync(newBlob, "fresh");
        string pointer = cache.SnapshotFilePath(id, commit, "x/config.json");
        string freshPointer = cache.SnapshotFilePath(id, commit, "weights.safetensors");

        cache.LinkIntoSnapshot(blob, pointer, newBlob: false);
        cache.LinkIntoSnapshot(newBlob, freshPointer, newBlob: true);

        Assert.Equal("bytes", await File.ReadAllTextAsync(pointer));
        Assert.Equal("fresh", await File.ReadAllTextAsync(freshPointer));
        Assert.True(File.Exists(blob));
        bool linked = cache.SymlinksSupported();
        Assert.Equal(linked, new FileInfo(pointer).LinkTarget is not null);
        Assert.Equal(linked, File.Exists(newBlob)); // without symlinks a new blob moves into the snapshot, as in Python
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(pointer)!, "*.tmp"));

        Assert.Equal(pointer, cache.TryGetCachedFile(id.WithRevision(commit), "x/config.json"));
        Assert.Null(cache.TryGetCachedFile(id, "x/config.json")); // no refs/main yet
        cache.WriteRef(id, "main", commit);
        Assert.Equal(pointer, cache.TryGetCachedFile(id, "x/config.json"));
        cache.WriteRef(id, "refs/pr/1", commit);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(dir.Path, "models--org--m", "refs", "refs", "pr", "1")));
        Assert.Equal(commit, cache.TryResolveCommit(id.WithRevision("refs/pr/1")));
    }
}
