using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubModelResolverTests
{
    [Fact]
    public void Classify_LocalPathsWinOverHubIds()
    {
        using var dir = new TempDir();
        string file = Path.Combine(dir.Path, "model.gguf");
        File.WriteAllText(file, "x");
        Assert.Equal(ModelReferenceKind.LocalDirectory, HubModelResolver.Classify(dir.Path));
        Assert.Equal(ModelReferenceKind.LocalFile, HubModelResolver.Classify(file));
        Assert.Equal(ModelReferenceKind.HubRepo, HubModelResolver.Classify("org/name"));
        Assert.Equal(ModelReferenceKind.HubRepo, HubModelResolver.Classify("org/name@refs/pr/1"));

        // an "org/name" that exists as a local folder is the folder
        string cwdLike = Path.Combine(dir.Path, "org", "name");
        Directory.CreateDirectory(cwdLike);
        string previous = Environment.CurrentDirectory;
        Assert.Equal(ModelReferenceKind.LocalDirectory, HubModelResolver.Classify(Path.GetRelativePath(previous, cwdLike)));
    }

    [Theory]
    [InlineData("./missing/model")]
    [InlineData("/definitely/not/here")]
    [InlineData("a/b/c")]
    public void Classify_MissingPath_IsFileNotFound(string reference) =>
        Assert.Throws<FileNotFoundException>(() => HubModelResolver.Classify(reference));

    [Theory]
    [InlineData("just-a-name")]
    [InlineData("org/bad--name")]
    public void Classify_Neither_IsArgumentException(string reference)
    {
        var e = Assert.Throws<ArgumentException>(() => HubModelResolver.Classify(reference));
        Assert.Contains("org/name", e.Message);
    }

    [Fact]
    public async Task Resolve_LocalFolder_IsReturnedWithoutNetwork()
    {
        using var dir = new TempDir();
        await using var hub = new FakeHub();
        using var client = HubTestKit.Client(hub, dir.Path);
        Assert.Equal(Path.GetFullPath(dir.Path), await HubModelResolver.ResolveAsync(dir.Path, client));
        Assert.Empty(hub.AllRequests);
    }

    [Fact]
    public async Task Resolve_HubId_DownloadsTheModel()
    {
        await using var hub = new FakeHub();
        var repo = hub.AddRepo(HubTestKit.TinyModel());
        using var cache = new TempDir();
        using var client = HubTestKit.Client(hub, cache.Path);
        string folder = await HubModelResolver.ResolveAsync("org/tiny", client);
        Assert.Empty(HubModelFiles.MissingFiles(folder));
        Assert.EndsWith(repo.Commit, folder);
    }

    [Fact]
    public void SelectFiles_PrefersIndexThenSingleThenAllTopLevel()
    {
        string[] sharded = ["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "tokenizer.model", "README.md", "pytorch_model.bin"];
        Assert.Equal(["config.json", "tokenizer.model", "model.safetensors.index.json"], HubModelFiles.Select(sharded));
        string[] single = ["config.json", "model.safetensors", "consolidated.safetensors", "special_tokens_map.json"];
        Assert.Equal(["config.json", "special_tokens_map.json", "model.safetensors"], HubModelFiles.Select(single));
        string[] loose = ["config.json", "b.safetensors", "a.safetensors", "sub/c.safetensors"];
        Assert.Equal(["config.json", "a.safetensors", "b.safetensors"], HubModelFiles.Select(loose));
        Assert.Empty(HubModelFiles.Select(["config.json", "pytorch_model.bin"]));
    }

    [Fact]
    public void MissingFiles_ListsAbsentShards()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), "{}");
        File.WriteAllText(Path.Combine(dir.Path, "model.safetensors.index.json"),
            "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\",\"c\":\"s1.safetensors\"}}");
        File.WriteAllText(Path.Combine(dir.Path, "s1.safetensors"), "x");
        Assert.Equal(["s2.safetensors"], HubModelFiles.MissingFiles(dir.Path));
        File.WriteAllText(Path.Combine(dir.Path, "s2.safetensors"), "x");
        Assert.Empty(HubModelFiles.MissingFiles(dir.Path));
        File.Delete(Path.Combine(dir.Path, "config.json"));
        Assert.Equal(["config.json"], HubModelFiles.MissingFiles(dir.Path));
    }
}
