using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubClientAuthTests
{
    [Fact]
    public async Task Token_GoesToHubHost_NeverToRedirectedHost()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel("org/gated", gated: true));
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path, token: FakeHub.GoodToken);

        string folder = await client.DownloadModelAsync(HubRepoId.Parse("org/gated"));

        Assert.Equal(repo.Files["model-00002-of-00002.safetensors"].Bytes, File.ReadAllBytes(Path.Combine(folder, "model-00002-of-00002.safetensors")));
        Assert.NotEmpty(hub.Hub.Requests);
        Assert.All(hub.Hub.Requests, r => Assert.Equal("Bearer " + FakeHub.GoodToken, r.Header("Authorization")));
        Assert.Equal(2, hub.Cdn.Requests.Count);
        Assert.All(hub.Cdn.Requests, r => Assert.Null(r.Header("Authorization")));
        Assert.NotEqual(hub.Hub.BaseUri.Authority, hub.Cdn.BaseUri.Authority);
    }

    [Fact]
    public async Task GatedRepo_WithoutToken_SaysToSetHfToken()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel("org/gated", gated: true));
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(HubRepoId.Parse("org/gated")));
        Assert.Equal(HubErrorKind.Unauthorized, e.Kind);
        Assert.Equal(401, e.StatusCode);
        Assert.Contains("HF_TOKEN", e.Message);
        Assert.Contains("org/gated", e.Message);
        Assert.Contains("gated", e.Message);

        var f = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(HubRepoId.Parse("org/gated"), "config.json"));
        Assert.Equal(HubErrorKind.Unauthorized, f.Kind);
        Assert.Contains("config.json", f.Message);
    }

    [Fact]
    public async Task WrongToken_IsRejectedToo()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel("org/gated", gated: true));
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path, token: "hf_wrong");

        var e = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(HubRepoId.Parse("org/gated"), "config.json"));
        Assert.Equal(HubErrorKind.Unauthorized, e.Kind);
        Assert.Equal("Bearer hf_wrong", hub.Hub.Requests.Single().Header("Authorization"));
    }

    [Fact]
    public async Task MissingRepoRevisionAndFile_NameWhatIsMissing()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        var noRepo = await Assert.ThrowsAsync<HubException>(() => client.DownloadModelAsync(HubRepoId.Parse("org/nothing")));
        Assert.Equal(HubErrorKind.NotFound, noRepo.Kind);
        Assert.Contains("org/nothing", noRepo.Message);

        var noRevision = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(HubRepoId.Parse("org/tiny@v9"), "config.json"));
        Assert.Equal(HubErrorKind.NotFound, noRevision.Kind);
        Assert.Contains("'v9'", noRevision.Message);

        var noFile = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(HubRepoId.Parse("org/tiny"), "tokenizer.model"));
        Assert.Equal(HubErrorKind.NotFound, noFile.Kind);
        Assert.Equal("EntryNotFound", noFile.ServerErrorCode);
        Assert.Contains("tokenizer.model", noFile.Message);
        Assert.Contains("'main'", noFile.Message);
        Assert.Contains("org/tiny", noFile.Message);
        // as huggingface_hub: the absence is remembered for offline runs
        Assert.True(File.Exists(Path.Combine(cache.Path, "models--org--tiny", ".no_exist", repo.Commit, "tokenizer.model")));
    }

    [Fact]
    public async Task TryDownload_ReturnsNullForAbsentOptionalFile_ButThrowsForMissingRepo()
    {
        await using var hub = new FakeHub();
        hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);

        Assert.Null(await client.TryDownloadFileAsync(HubRepoId.Parse("org/tiny"), "tokenizer.model"));
        Assert.NotNull(await client.TryDownloadFileAsync(HubRepoId.Parse("org/tiny"), "tokenizer.json"));
        await Assert.ThrowsAsync<HubException>(() => client.TryDownloadFileAsync(HubRepoId.Parse("org/nothing"), "tokenizer.model"));

        using var offline = HubTestKit.Client(hub, cache.Path, offline: true);
        hub.ClearRequests();
        Assert.Null(await offline.TryDownloadFileAsync(HubRepoId.Parse("org/tiny"), "tokenizer.model"));
        Assert.Empty(hub.AllRequests);
    }

    [Fact]
    public void ResolveUri_EscapesRevisionFullyAndFileBySegment()
    {
        var options = new HubOptions { Endpoint = new Uri("https://hub.example/mirror/"), CacheDirectory = Path.GetTempPath() };
        using var http = new EdgeTune.Formats.Hub.Internal.HubHttp(options, null, false);
        Assert.Equal("https://hub.example/mirror/org/m/resolve/refs%2Fpr%2F1/sub/a%20b.json",
            http.ResolveUri(HubRepoId.Parse("org/m@refs/pr/1"), "sub/a b.json").AbsoluteUri);
        Assert.Equal("https://hub.example/mirror/api/models/org/m/revision/main",
            http.RepoInfoUri(HubRepoId.Parse("org/m")).AbsoluteUri);
        Assert.Throws<ArgumentException>(() => http.ResolveUri(HubRepoId.Parse("org/m"), "../etc/passwd"));
    }

    [Theory]
    [InlineData("\"abc\"", "abc")]
    [InlineData("W/\"abc\"", "abc")]
    [InlineData("abc", "abc")]
    public void Etag_IsNormalizedAsHuggingfaceHubDoes(string raw, string expected) =>
        Assert.Equal(expected, EdgeTune.Formats.Hub.Internal.HubHttp.NormalizeEtag(raw));
}
