using EdgeTune.Formats.Hub;
using EdgeTune.Models;
using EdgeTune.Tests.Models;

namespace EdgeTune.Tests.Formats.Hub;

/// <summary>
/// huggingface_hub's cache keeps the bytes in <c>blobs/{etag}</c> and makes <c>snapshots/{commit}/{file}</c> a
/// relative symlink to <c>../../blobs/{etag}</c>. A model read through those links must load and run: the
/// storage has to take the length of the link's target, not of the link (76 bytes for a sha256 target).
/// </summary>
public class HubSymlinkLoadTests
{
    private static void SkipWithoutSymlinks(string folder)
    {
        string probe = Path.Combine(folder, "symlink-probe");
        try { File.CreateSymbolicLink(probe, "target"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            Skip.If(true, $"symbolic links cannot be made here: {e.Message}");
        }
        File.Delete(probe);
    }

    private static void AssertRelativeBlobLink(string snapshotFile, string expectedEtag)
    {
        var info = new FileInfo(snapshotFile);
        Assert.NotNull(info.LinkTarget);
        Assert.Equal(Path.Combine("..", "..", "blobs", expectedEtag), info.LinkTarget);
        Assert.True(info.Length < 100, $"the link itself is {info.Length} bytes"); // the length the old code mapped
    }

    [SkippableFact]
    public async Task DownloadedModel_ReadThroughSnapshotSymlinks_LoadsAndGeneratesRunCText()
    {
        using var cache = new TempDir();
        SkipWithoutSymlinks(cache.Path);
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.Stories260K());
        var options = new HubOptions { Endpoint = hub.Hub.BaseUri, CacheDirectory = cache.Path };

        using (var loaded = await ModelLoader.LoadAsync("karpathy/stories260K", hub: options))
        {
            string snapshot = Path.Combine(cache.Path, "models--karpathy--stories260K", "snapshots", repo.Commit);
            Assert.Equal(snapshot, loaded.Source);
            AssertRelativeBlobLink(Path.Combine(snapshot, "model.safetensors"), repo.EtagOf("model.safetensors"));
            AssertRelativeBlobLink(Path.Combine(snapshot, "tokenizer.model"), repo.EtagOf("tokenizer.model"));
            AssertRelativeBlobLink(Path.Combine(snapshot, "config.json"), repo.EtagOf("config.json"));
            Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(cache.Path, "models--karpathy--stories260K", "refs", "main")));
            Assert.Equal(512, loaded.Model.VocabSize);
            Stories260KReference.AssertGreedyMatchesRunC(loaded);
        }

        // Again: every file is in the cache, and progress reports the blobs' sizes, not the links'.
        var progress = new HubTestKit.ProgressLog();
        using var client = HubTestKit.Client(hub, cache.Path);
        await client.DownloadModelAsync(HubRepoId.Parse("karpathy/stories260K"), progress);
        var weights = Assert.Single(progress.Reports, r => r.File == "model.safetensors");
        Assert.True(weights.FromCache);
        Assert.Equal(repo.Files["model.safetensors"].Bytes.Length, weights.BytesDownloaded);
    }

    /// <summary>A cache written by hand the way Python's huggingface_hub lays it out (no EdgeTune code involved),
    /// then opened offline by repo id.</summary>
    [SkippableFact]
    public async Task HandMadeHuggingFaceCache_OpensOfflineByRepoId_AndRuns()
    {
        using var cache = new TempDir();
        SkipWithoutSymlinks(cache.Path);
        var repo = HubTestKit.Stories260K("someone/tiny-stories");
        string repoFolder = Path.Combine(cache.Path, "models--someone--tiny-stories");
        string snapshot = Path.Combine(repoFolder, "snapshots", repo.Commit);
        Directory.CreateDirectory(Path.Combine(repoFolder, "blobs"));
        Directory.CreateDirectory(Path.Combine(repoFolder, "refs"));
        Directory.CreateDirectory(snapshot);
        foreach (string name in new[] { "config.json", "model.safetensors", "tokenizer.model" })
        {
            byte[] bytes = repo.Files[name].Bytes;
            string etag = repo.EtagOf(name); // sha256 for the LFS files, the git blob id for config.json
            File.WriteAllBytes(Path.Combine(repoFolder, "blobs", etag), bytes);
            File.CreateSymbolicLink(Path.Combine(snapshot, name), Path.Combine("..", "..", "blobs", etag));
        }
        File.WriteAllText(Path.Combine(repoFolder, "refs", "main"), repo.Commit);

        var offline = new HubOptions { Endpoint = HubTestKit.DeadEndpoint(), CacheDirectory = cache.Path, Offline = true };
        using var loaded = await ModelLoader.LoadAsync("someone/tiny-stories", hub: offline);
        Assert.Equal(snapshot, loaded.Source);
        Stories260KReference.AssertGreedyMatchesRunC(loaded);
    }
}
