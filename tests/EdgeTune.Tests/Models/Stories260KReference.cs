using EdgeTune.Generation;
using EdgeTune.Models;

namespace EdgeTune.Tests.Models;

/// <summary>
/// The stories260K check every loading path can share: llama2.c's <c>run.c -t 0 -n 100 -i "Once upon a time"</c>
/// printed expected_greedy.txt; a loaded model and its tokenizer must reproduce it byte for byte.
/// </summary>
internal static class Stories260KReference
{
    public const string Prompt = "Once upon a time";

    /// <summary>llama2.c's encode(Prompt, bos=1): BOS, "▁Once", "▁upon", "▁a", "▁time".</summary>
    public static readonly int[] PromptIds = [1, 403, 407, 261, 378];

    /// <summary>run.c's -n 100 counts every position, the 5 prompt positions included.</summary>
    public const int NewTokens = 96;

    /// <summary>Encodes the prompt with the loaded tokenizer, generates greedily with the loaded model, decodes,
    /// and compares with run.c's output (which ends with a newline).</summary>
    public static void AssertGreedyMatchesRunC(LoadedModel loaded)
    {
        var tok = loaded.RequireTokenizer();
        int[] prompt = tok.Encode(Prompt, addBos: true);
        Assert.Equal(PromptIds, prompt);
        int[] generated = new TokenGenerator(loaded.Model)
            .Generate(prompt, NewTokens, new Sampler(SamplingOptions.Greedy), stopIds: loaded.StopIds())
            .ToArray();
        Assert.Equal(NewTokens, generated.Length);
        string expected = File.ReadAllText(TestAssets.Require("stories260K/expected_greedy.txt"));
        Assert.Equal(expected, tok.Decode([.. prompt, .. generated], skipSpecial: true) + "\n");
    }
}
