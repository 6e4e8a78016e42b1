using Microsoft.ML.Tokenizers;

namespace EdgeTune.Models.Bert;

/// <summary>
/// WordPiece tokenization for BERT encoders through Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>
/// (basic tokenization, optional lower-casing, [CLS] … [SEP]), padded into a <see cref="BertBatch"/>.
/// </summary>
public sealed class BertWordPiece
{
    private readonly BertTokenizer _tokenizer;

    private BertWordPiece(BertTokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>A tokenizer over a vocab.txt stream (one token a line); all-MiniLM-L6-v2 is lower-cased.</summary>
    public static BertWordPiece FromVocab(Stream vocab, bool lowerCase = true) =>
        new(BertTokenizer.Create(vocab, new BertOptions { LowerCaseBeforeTokenization = lowerCase }));

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
        var ids = _tokenizer.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true);
        if (ids.Count <= maxLength) return [.. ids];
        var cut = ids.Take(maxLength).ToArray();
        cut[^1] = _tokenizer.SeparatorTokenId;
        return cut;
    }

    /// <summary>The texts encoded and padded to the longest.</summary>
    public BertBatch EncodeBatch(IReadOnlyList<string> texts, int maxLength = 512) =>
        BertBatch.Pad(texts.Select(t => (IReadOnlyList<int>)Encode(t, maxLength)).ToList(), PaddingTokenId);
}
