using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubOptionsTests
{
    private static Func<string, string?> Env(params (string Key, string Value)[] vars)
    {
        var map = vars.ToDictionary(v => v.Key, v => v.Value);
        return key => map.TryGetValue(key, out var v) ? v : null;
    }

    private static readonly string Home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    [Fact]
    public void CacheDirectory_FollowsHuggingfaceHubPrecedence()
    {
        Assert.Equal(Path.Combine(Home, ".cache", "huggingface", "hub"), HubOptions.ResolveCacheDirectory(Env()));
        Assert.Equal(Path.Combine("/x", "huggingface", "hub"), HubOptions.ResolveCacheDirectory(Env(("XDG_CACHE_HOME", "/x"))));
        Assert.Equal(Path.Combine("/h", "hub"), HubOptions.ResolveCacheDirectory(Env(("XDG_CACHE_HOME", "/x"), ("HF_HOME", "/h"))));
        Assert.Equal("/legacy", HubOptions.ResolveCacheDirectory(Env(("HF_HOME", "/h"), ("HUGGINGFACE_HUB_CACHE", "/legacy"))));
        Assert.Equal("/c", HubOptions.ResolveCacheDirectory(Env(("HF_HOME", "/h"), ("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HUB_CACHE", "/c"))));
        Assert.Equal(Path.Combine(Home, "hf"), HubOptions.ResolveCacheDirectory(Env(("HF_HUB_CACHE", "~/hf"))));
    }

    [Fact]
    public void Token_FromEnvironmentThenTokenFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "token"), "hf_from_file\n");
        Assert.Equal("hf_from_file", HubOptions.ResolveToken(Env(("HF_HOME", dir.Path))));
        Assert.Equal("hf_env", HubOptions.ResolveToken(Env(("HF_HOME", dir.Path), ("HF_TOKEN", "hf_env"))));
        Assert.Equal("hf_legacy", HubOptions.ResolveToken(Env(("HF_HOME", dir.Path), ("HUGGING_FACE_HUB_TOKEN", "hf_legacy"))));
        string other = Path.Combine(dir.Path, "other-token");
        File.WriteAllText(other, "  hf_other  ");
        Assert.Equal("hf_other", HubOptions.ResolveToken(Env(("HF_HOME", dir.Path), ("HF_TOKEN_PATH", other))));
        Assert.Null(HubOptions.ResolveToken(Env(("HF_HOME", Path.Combine(dir.Path, "none")))));
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    [InlineData("", false)]
    public void Offline_AcceptsHuggingfaceHubTruthyValues(string value, bool expected)
    {
        Assert.Equal(expected, HubOptions.FromEnvironment(Env(("HF_HUB_OFFLINE", value), ("HF_HOME", "/nonexistent-hf-home"))).Offline);
        Assert.Equal(expected, HubOptions.FromEnvironment(Env(("TRANSFORMERS_OFFLINE", value), ("HF_HOME", "/nonexistent-hf-home"))).Offline);
    }

    [Fact]
    public void Endpoint_AndTimeouts_FromEnvironment()
    {
        var o = HubOptions.FromEnvironment(Env(("HF_ENDPOINT", "https://mirror.example/"), ("HF_HUB_ETAG_TIMEOUT", "2.5"), ("HF_HOME", "/nonexistent-hf-home")));
        Assert.Equal("https://mirror.example/", o.Endpoint.AbsoluteUri);
        Assert.Equal(TimeSpan.FromSeconds(2.5), o.MetadataTimeout);
        Assert.Equal(HubOptions.DefaultEndpoint, HubOptions.FromEnvironment(Env(("HF_HOME", "/nonexistent-hf-home"))).Endpoint);
        Assert.Throws<ArgumentException>(() => HubOptions.FromEnvironment(Env(("HF_ENDPOINT", "not a url"))));
    }
}
