using EdgeTune.Formats.Hub;

namespace EdgeTune.Tests.Formats.Hub;

public class HubRepoIdTests
{
    [Theory]
    [InlineData("org/name", "org", "name", "main")]
    [InlineData("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "TinyLlama", "TinyLlama-1.1B-Chat-v1.0", "main")]
    [InlineData("org/name@v1.0", "org", "name", "v1.0")]
    [InlineData("org/name@refs/pr/12", "org", "name", "refs/pr/12")]
    [InlineData("my_org/model.v2@0123456789abcdef0123456789abcdef01234567", "my_org", "model.v2", "0123456789abcdef0123456789abcdef01234567")]
    public void Parse_Valid(string text, string owner, string name, string revision)
    {
        var id = HubRepoId.Parse(text);
        Assert.Equal((owner, name, revision), (id.Owner, id.Name, id.Revision));
        Assert.Equal($"models--{owner}--{name}", id.CacheFolderName);
        Assert.Equal(revision.Length == 40, id.RevisionIsCommitHash);
    }

    [Theory]
    [InlineData("")]
    [InlineData("name-only")]
    [InlineData("a/b/c")]
    [InlineData("org/")]
    [InlineData("/name")]
    [InlineData("org/na--me")]
    [InlineData("org/na..me")]
    [InlineData("org/-name")]
    [InlineData("org/name.")]
    [InlineData("org/na me")]
    [InlineData("org/name@")]
    [InlineData("org/name@a b")]
    [InlineData("org/name@../x")]
    public void Parse_Invalid(string text)
    {
        Assert.False(HubRepoId.TryParse(text, out _));
        Assert.Throws<FormatException>(() => HubRepoId.Parse(text));
    }

    [Fact]
    public void ToString_RoundTrips()
    {
        Assert.Equal("org/name", HubRepoId.Parse("org/name").ToString());
        Assert.Equal("org/name@dev", HubRepoId.Parse("org/name@dev").ToString());
        Assert.Equal("org/name@dev", HubRepoId.Parse("org/name").WithRevision("dev").ToString());
    }

    [Fact]
    public void TooLong_IsRejected()
    {
        Assert.False(HubRepoId.TryParse("o/" + new string('n', 95), out _));
        Assert.True(HubRepoId.TryParse("o/" + new string('n', 94), out _));
    }
}
