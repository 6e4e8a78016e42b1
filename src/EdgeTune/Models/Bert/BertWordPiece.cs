using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace EdgeTune.Models.Bert;

/// <summary>
/// WordPiece tokenization for BERT encoders: Hugging Face's BERT normalisation and pre-tokenisation (<see cref="Basic"/>), then
/// Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> for the WordPiece step and [CLS] … [SEP]; padded into a <see cref="BertBatch"/>.
/// </summary>
/// <remarks>The package's own basic tokenization differs from Hugging Face's on real text (checked against HF tokenizers on
/// all-MiniLM-L6-v2's tokenizer.json): it drops symbols such as &lt; &gt; | = € and emoji instead of keeping them as words or
/// punctuation, and does not treat tab/CR/LF as spaces. Its accent removal (RemoveNonSpacingMarks) decomposes with
/// string.Normalize(FormD), which does nothing under the InvariantGlobalization this product runs with, so "é" would stay
/// "é" (and become [UNK]) where Hugging Face gives "e". So that part is done here, by the rules of Hugging Face's
/// BertNormalizer and BertPreTokenizer with our own canonical decomposition (<see cref="Text.Internal.CanonicalDecomposition"/>),
/// and the package, created without basic tokenization (so without its normaliser), only maps words to word pieces.</remarks>
public sealed class BertWordPiece
{
    private readonly BertTokenizer _tokenizer;
    private readonly byte[] _vocab;

    private BertWordPiece(BertTokenizer tokenizer, byte[] vocab, bool lowerCase)
    {
        _tokenizer = tokenizer;
        _vocab = vocab;
        LowerCase = lowerCase;
    }

    /// <summary>A tokenizer over a vocab.txt stream (one token a line); all-MiniLM-L6-v2 is lower-cased.</summary>
    public static BertWordPiece FromVocab(Stream vocab, bool lowerCase = true)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        using var copy = new MemoryStream();
        vocab.CopyTo(copy);
        byte[] bytes = copy.ToArray();
        using var read = new MemoryStream(bytes, writable: false);
        return new(BertTokenizer.Create(read, new BertOptions { ApplyBasicTokenization = false, LowerCaseBeforeTokenization = false }), bytes, lowerCase);
    }

    /// <summary>Whether text is lower-cased (and accents stripped) before WordPiece.</summary>
    public bool LowerCase { get; }

    /// <summary>Writes the vocabulary this tokenizer was made from (vocab.txt, byte for byte).</summary>
    public void SaveVocab(string path) => SaveVocab(path, Security.RunFiles.Plain);

    /// <summary>Writes the vocabulary through <paramref name="files"/> (encrypted in an encrypted run folder).</summary>
    public void SaveVocab(string path, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        files.WriteAllBytes(path, _vocab);
    }

    /// <inheritdoc cref="FromVocab(Stream, bool)"/>
    public static BertWordPiece FromVocab(string vocabPath, bool lowerCase = true)
    {
        using var s = File.OpenRead(vocabPath);
        return FromVocab(s, lowerCase);
    }

    public int PaddingTokenId => _tokenizer.PaddingTokenId;

    /// <summary>[CLS] wordpieces [SEP], truncated to <paramref name="maxLength"/> tokens (keeping the final [SEP]).</summary>
    public int[] Encode(string text, int maxLength = 512)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "room for [CLS] and [SEP] is needed");
        var ids = _tokenizer.EncodeToIds(Basic(text, LowerCase), addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true);
        if (ids.Count <= maxLength) return [.. ids];
        var cut = ids.Take(maxLength).ToArray();
        cut[^1] = _tokenizer.SeparatorTokenId;
        return cut;
    }

    /// <summary>The texts encoded and padded to the longest.</summary>
    public BertBatch EncodeBatch(IReadOnlyList<string> texts, int maxLength = 512) =>
        BertBatch.Pad(texts.Select(t => (IReadOnlyList<int>)Encode(t, maxLength)).ToList(), PaddingTokenId);

    /// <summary>Hugging Face's BERT normalisation and pre-tokenisation, returned as words joined by single spaces: control
    /// characters (category C*, except tab/CR/LF) and U+FFFD removed, whitespace (Zs, tab, CR, LF) made a space, CJK ideographs
    /// set apart; when <paramref name="lowerCase"/>: accents stripped (canonical decomposition, non-spacing marks removed) and lower-cased; then
    /// punctuation (ASCII !-/ :-@ [-` {-~ and Unicode P*) split into words of its own.</summary>
    internal static string Basic(string text, bool lowerCase)
    {
        var clean = new StringBuilder(text.Length + 8);
        foreach (var r in text.EnumerateRunes())
        {
            int c = r.Value;
            if (c == 0 || c == 0xFFFD) continue;
            if (c is '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator) { clean.Append(' '); continue; }
            if (IsControl(r)) continue;
            if (IsCjk(c)) clean.Append(' ').Append(r.ToString()).Append(' ');
            else clean.Append(r.ToString());
        }
        string s = clean.ToString();
        if (lowerCase)
        {
            s = Text.Internal.CanonicalDecomposition.StripNonSpacingMarks(s).ToLowerInvariant();
        }
        var words = new StringBuilder(s.Length + 16);
        foreach (var r in s.EnumerateRunes())
        {
            if (r.Value == ' ') { words.Append(' '); continue; }
            if (IsPunctuation(r)) words.Append(' ').Append(r.ToString()).Append(' ');
            else words.Append(r.ToString());
        }
        return string.Join(' ', words.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    private static bool IsControl(Rune r) => Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    private static bool IsPunctuation(Rune r)
    {
        int c = r.Value;
        if (c is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int c) => c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
        or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF
        or >= 0x2F800 and <= 0x2FA1F;
}
