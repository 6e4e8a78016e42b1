using EdgeTune.Text.Internal;
using Microsoft.ML.Tokenizers;

namespace EdgeTune.Text;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (ModelProto: BPE or Unigram). BPE models with the identity normalizer
/// (Llama 2, Mistral, Gemma) are encoded by our own port of SentencePiece's BPE (<see cref="SentencePieceBpeEncoder"/>,
/// which breaks equal-score ties leftmost like SentencePiece); Unigram models and models with a precompiled
/// normalization map go through Microsoft.ML.Tokenizers' <see cref="SentencePieceTokenizer"/>. Added tokens are split
/// out here first; decoding maps pieces back to bytes ourselves so streaming can hold incomplete UTF-8.
/// </summary>
public sealed class SentencePieceModelTokenizer : TokenizerBase
{
    private readonly SentencePieceTokenizer _sp;
    private readonly SentencePieceBpeEncoder? _bpe;
    private readonly string?[] _pieces;
    private readonly Dictionary<string, int> _vocab;

    private SentencePieceModelTokenizer(SentencePieceTokenizer sp, SentencePieceProto proto, SentencePieceBpeEncoder? bpe,
        IEnumerable<AddedToken> added, int? bosId, int? eosId, int? padId, bool addBos)
        : base(added, bosId ?? sp.BeginningOfSentenceId, eosId ?? sp.EndOfSentenceId, padId, sp.UnknownId, addBos)
    {
        _sp = sp;
        _bpe = bpe;
        // The piece table is the ModelProto's own (id = position), every piece type included.
        _vocab = new Dictionary<string, int>(proto.Pieces.Count, StringComparer.Ordinal);
        for (int id = 0; id < proto.Pieces.Count; id++) _vocab.TryAdd(proto.Pieces[id].Text, id);
        int max = proto.Pieces.Count - 1;
        foreach (var t in AddedTokens) max = Math.Max(max, t.Id);
        _pieces = new string?[max + 1];
        for (int id = 0; id < proto.Pieces.Count; id++) _pieces[id] = proto.Pieces[id].Text;
    }

    /// <summary>Reads a SentencePiece model file. <paramref name="addedTokens"/>: extra tokens matched on the text
    /// (e.g. chat markers from tokenizer_config.json). BOS/EOS default to the model's own ids.</summary>
    public static SentencePieceModelTokenizer Load(string path, IEnumerable<AddedToken>? addedTokens = null, int? padId = null,
        bool addBosByDefault = true, int? bosId = null, int? eosId = null)
    {
        byte[] data = File.ReadAllBytes(path);
        var proto = SentencePieceProto.Parse(data, path);
        SentencePieceTokenizer sp;
        try
        {
            using var stream = new MemoryStream(data, writable: false);
            sp = SentencePieceTokenizer.Create(stream, false, false);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{path}: not a readable SentencePiece model ({e.Message})", e);
        }
        var bpe = SentencePieceBpeEncoder.Supports(proto) ? new SentencePieceBpeEncoder(proto) : null;
        return new SentencePieceModelTokenizer(sp, proto, bpe, addedTokens ?? [], bosId, eosId, padId, addBosByDefault);
    }

    /// <summary>The underlying Microsoft.ML.Tokenizers model.</summary>
    public SentencePieceTokenizer Model => _sp;

    public override int VocabSize => _pieces.Length;

    public override string? IdToToken(int id)
    {
        if ((uint)id >= (uint)_pieces.Length) return null;
        return TryGetAdded(id, out var t) ? t.Content : _pieces[id];
    }

    public override int? TokenToId(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _vocab.TryGetValue(token, out int id) ? id : null;

    /// <summary>True when encoding uses our SentencePiece BPE port rather than Microsoft.ML.Tokenizers.</summary>
    public bool UsesSentencePieceBpePort => _bpe is not null;

    protected override void EncodeSegment(string text, int offset, List<int> ids)
    {
        if (_bpe is not null) _bpe.Encode(text, _sp.UnknownId, ids);
        else ids.AddRange(_sp.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false,
            considerPreTokenization: true, considerNormalization: true));
    }

    protected override bool IsModelControl(int id) => id == BosId || id == EosId || id == UnkId;

    /// <summary>The model's normalizer adds a "▁" in front of the text (false for Gemma); only then does decoding
    /// drop the leading space.</summary>
    public bool AddDummyPrefix => _sp.AddDummyPrefix;

    protected override byte[] ModelTokenBytes(int id, bool atStart) =>
        SentencePieceBpeTokenizer.PieceBytes(_pieces[id], atStart && _sp.AddDummyPrefix);
}
