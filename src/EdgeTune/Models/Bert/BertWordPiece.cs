using Microsoft.ML.Tokenizers;

namespace EdgeTune.Models.Bert;

/// <summary>
/// WordPiece tokenization for BERT encoders through Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>
/// (basic tokenization, optional lower-casing, [CLS] … [SEP]), padded into a <see cref="BertBatch"/>.
/// </summary>
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
        return new(BertTokenizer.Create(read, new BertOptions { LowerCaseBeforeTokenization = lowerCase, RemoveNonSpacingMarks = lowerCase }), bytes, lowerCase);
    }

    /// <summary>Whether text is lower-cased (and accents stripped) before WordPiece.</summary>
    public bool LowerCase { get; }

    /// <summary>Writes the vocabulary this tokenizer was made from (vocab.txt, byte for byte).</summary>
    public void SaveVocab(string path) => Formats.Internal.AtomicFile.Write(path, fs => fs.Write(_vocab));

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
