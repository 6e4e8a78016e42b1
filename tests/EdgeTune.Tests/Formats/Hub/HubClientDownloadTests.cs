using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubClientDownloadTests
{
    [Fact]
    public async Task DownloadModel_WritesHuggingFaceHubCacheLayout()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        string folder = await client.DownloadModelAsync(HubRepoId.Parse("org/tiny"));

        string repoDir = Path.Combine(cache.Path, "models--org--tiny");
        Assert.Equal(Path.Combine(repoDir, "snapshots", repo.Commit), folder);
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main"))); // no newline, as Python writes it

        var expectedBlobs = HubTestKit.ModelFiles.Select(repo.EtagOf).Order().ToArray();
        var blobs = Directory.GetFiles(Path.Combine(repoDir, "blobs")).Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(expectedBlobs, blobs); // no .incomplete left, nothing else (README, .bin) fetched

        var snapshotFiles = Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f)).Order().ToArray();
        Assert.Equal(HubTestKit.ModelFiles.Order().ToArray(), snapshotFiles);

        bool links = client.Cache.SymlinksSupported();
        foreach (string name in HubTestKit.ModelFiles)
        {
            string entry = Path.Combine(folder, name);
            Assert.Equal(repo.Files[name].Bytes, File.ReadAllBytes(entry));
            if (links)
                Assert.Equal(Path.Combine("..", "..", "blobs", repo.EtagOf(name)), new FileInfo(entry).LinkTarget);
        }
        // LFS etags are the sha256 of the content (X-Linked-Etag), plain files keep the git oid from ETag.
        Assert.Equal(64, repo.EtagOf("model-00001-of-00002.safetensors").Length);
        Assert.Equal(40, repo.EtagOf("config.json").Length);
    }

    [Fact]
    public async Task DownloadFile_NestedFile_LinksThreeLevelsUp()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        string path = await client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "sub/nested.json");

        Assert.Equal(Path.Combine(cache.Path, "models--org--tiny", "snapshots", repo.Commit, "sub", "nested.json"), path);
        Assert.Equal(repo.Files["sub/nested.json"].Bytes, File.ReadAllBytes(path));
        if (client.Cache.SymlinksSupported())
            Assert.Equal(Path.Combine("..", "..", "..", "blobs", repo.EtagOf("sub/nested.json")), new FileInfo(path).LinkTarget);
    }

    [Fact]
    public async Task DroppedConnection_IsResumedWithRange_AndBytesAreExact()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        hub.DropNextDownloads = 1;
        var progress = new HubTestKit.ProgressLog();
        const string shard = "model-00001-of-00002.safetensors";

        string path = await client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), shard, progress);

        byte[] expected = repo.Files[shard].Bytes;
        Assert.Equal(expected, File.ReadAllBytes(path));
        var gets = hub.Cdn.Requests.Where(r => r.Method == "GET").ToList();
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Header("Range"));
        Assert.Equal($"bytes={expected.Length / 2}-", gets[1].Header("Range"));
        var last = progress.Reports[^1];
        Assert.Equal((shard, (long)expected.Length, (long?)expected.Length), (last.File, last.BytesDownloaded, last.TotalBytes));
        Assert.All(progress.Reports, r => Assert.True(r.BytesDownloaded <= expected.Length));
    }

    [Fact]
    public async Task ExistingIncompleteFile_IsResumedFromItsLength()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        const string shard = "model-00002-of-00002.safetensors";
        byte[] expected = repo.Files[shard].Bytes;
        string blobs = Path.Combine(cache.Path, "models--org--tiny", "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, repo.EtagOf(shard) + ".incomplete"), expected[..12_345]); // e.g. left by Python

        string path = await client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), shard);

        Assert.Equal(expected, File.ReadAllBytes(path));
        var get = Assert.Single(hub.Cdn.Requests, r => r.Method == "GET");
        Assert.Equal("bytes=12345-", get.Header("Range"));
        Assert.False(File.Exists(Path.Combine(blobs, repo.EtagOf(shard) + ".incomplete")));
    }

    [Fact]
    public async Task ServerIgnoringRange_ReplacesThePartialFile()
    {
        await using var hub = new FakeHub { IgnoreRange = true };
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        const string shard = "model-00002-of-00002.safetensors";
        string blobs = Path.Combine(cache.Path, "models--org--tiny", "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, repo.EtagOf(shard) + ".incomplete"), new byte[777]); // wrong bytes: must not be kept

        string path = await client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), shard);

        Assert.Equal(repo.Files[shard].Bytes, File.ReadAllBytes(path));
        Assert.Equal("bytes=777-", hub.Cdn.Requests.Single(r => r.Method == "GET").Header("Range")); // asked, got 200
    }

    [Fact]
    public async Task CorruptedLfsBytes_FailTheSha256Check_AndLeaveNoBlob()
    {
        await using var hub = new FakeHub { Corrupt = true };
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        const string shard = "model-00002-of-00002.safetensors";

        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), shard));

        Assert.Equal(HubErrorKind.Integrity, e.Kind);
        Assert.Contains(repo.EtagOf(shard), e.Message);
        string blobs = Path.Combine(cache.Path, "models--org--tiny", "blobs");
        Assert.Empty(Directory.GetFiles(blobs));
        Assert.False(Directory.Exists(Path.Combine(cache.Path, "models--org--tiny", "snapshots", repo.Commit)));
    }

    [Fact]
    public async Task SecondDownload_OfSameRevision_FetchesNoBytes()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        var id = HubRepoId.Parse("org/tiny");
        await client.DownloadModelAsync(id);
        hub.ClearRequests();
        var progress = new HubTestKit.ProgressLog();

        await client.DownloadModelAsync(id, progress);

        Assert.Empty(hub.Cdn.Requests);
        var hubRequest = Assert.Single(hub.Hub.Requests); // only the listing, to learn where main points now
        Assert.StartsWith("/api/models/org/tiny/revision/main", hubRequest.Target);
        Assert.All(progress.Reports, r => Assert.True(r.FromCache));
        Assert.Equal(HubTestKit.ModelFiles.Length, progress.Reports.Count);
    }

    [Fact]
    public async Task SameBlobInANewCommit_IsLinkedNotDownloaded()
    {
        await using var hub = new FakeHub();
        var first = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        var id = HubRepoId.Parse("org/tiny");
        await client.DownloadModelAsync(id);
        var second = HubTestKit.TinyModel(); // same files, new commit (e.g. only the README changed)
        hub.AddRepo(second);
        hub.ClearRequests();

        string folder = await client.DownloadModelAsync(id);

        Assert.EndsWith(second.Commit, folder);
        Assert.NotEqual(first.Commit, second.Commit);
        Assert.Empty(hub.Cdn.Requests);
        Assert.DoesNotContain(hub.Hub.Requests, r => r.Method == "GET" && r.Target.Contains("/resolve/"));
        Assert.Equal(second.Commit, File.ReadAllText(Path.Combine(cache.Path, "models--org--tiny", "refs", "main")));
        Assert.Equal(first.Files["config.json"].Bytes, File.ReadAllBytes(Path.Combine(folder, "config.json")));
    }

    [Fact]
    public async Task RenamedRepo_RelativeRedirectIsFollowed()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        string path = await client.DownloadFileAsync(HubRepoId.Parse("old-org/renamed"), "config.json");

        Assert.Equal(repo.Files["config.json"].Bytes, File.ReadAllBytes(path));
        Assert.Contains("models--old-org--renamed", path);
    }

    [Fact]
    public async Task ConcurrentDownloadsOfOneFile_FetchTheBlobOnce()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        const string shard = "model-00001-of-00002.safetensors";

        string[] paths = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), shard)));

        Assert.Single(paths.Distinct());
        Assert.Equal(repo.Files[shard].Bytes, File.ReadAllBytes(paths[0]));
        Assert.Single(hub.Cdn.Requests, r => r.Method == "GET");
    }

    [Fact]
    public async Task Cancellation_StopsTheDownload()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.DownloadModelAsync(HubRepoId.Parse("org/tiny"), null, cts.Token));
        Assert.False(Directory.Exists(Path.Combine(cache.Path, "models--org--tiny", "snapshots")));
    }
}
