namespace EdgeTune.Tests;

/// <summary>
/// Finds the shared real-file assets (`shared/assets`, a sibling of the repository) by walking up
/// from the test binaries, or from <c>EDGETUNE_ASSETS</c>. Tests that need them are
/// <c>[SkippableFact]</c>s that call <see cref="Require"/>: where the folder is absent they are
/// reported as skipped, with the reason.
/// </summary>
public static class TestAssets
{
    public static readonly string? Root = Find();

    private static string? Find()
    {
        string? env = Environment.GetEnvironmentVariable("EDGETUNE_ASSETS");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "assets");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>The full path of an asset; skips the calling test when it is absent.</summary>
    public static string Require(string relative)
    {
        Skip.If(Root is null, "shared/assets not found (place shared/ beside the repository or set EDGETUNE_ASSETS)");
        string path = Path.Combine(Root!, relative);
        Skip.IfNot(File.Exists(path) || Directory.Exists(path), $"asset not found: {path}");
        return path;
    }
}
