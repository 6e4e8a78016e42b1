namespace EdgeTune.Tests;

public class AssetsSmokeTests
{
    [SkippableFact]
    public void ProvenanceIsReadable()
    {
        string path = TestAssets.Require("PROVENANCE.md");
        Assert.Contains("stories260K", File.ReadAllText(path));
    }
}
