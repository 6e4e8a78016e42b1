using System.Collections.Concurrent;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>Loads each real tokenizer once per test run (Qwen2's 151k merges take seconds to build).</summary>
internal static class TestTokenizers
{
    private static readonly ConcurrentDictionary<string, Lazy<ITokenizer>> Cache = new();

    /// <summary>The tokenizer at an asset path (folder or file); skips the test when the asset is absent.</summary>
    public static ITokenizer Get(string relative)
    {
        string path = TestAssets.Require(relative);
        return Cache.GetOrAdd(path, p => new Lazy<ITokenizer>(() => TokenizerLoader.Load(p))).Value;
    }
}
