using System.Text;
using EdgeTune.Text.Internal;

namespace EdgeTune.Text;

/// <summary>
/// What every tokenizer here shares: added/special tokens split out before the model, BOS/EOS handling,
/// Decode and streaming built on <see cref="TokenBytes"/>. Subclasses encode one plain segment
/// (<see cref="EncodeSegment"/>) and give the bytes of a model token (<see cref="ModelTokenBytes"/>).
/// </summary>
public abstract class TokenizerBase : ITokenizer
{
    private readonly SpecialTokenSplitter _splitter;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, int> _specialTokens;

    protected TokenizerBase(IEnumerable<AddedToken> addedTokens, int? bosId, int? eosId, int? padId, int? unkId, bool addBosByDefault)
    {
        var added = addedTokens.ToList();
        _splitter = new SpecialTokenSplitter(added);
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var t in added) _addedById[t.Id] = t;
        _specialTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in added) _specialTokens[t.Content] = t.Id;
        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        UnkId = unkId;
        AddBosByDefault = addBosByDefault;
    }

    public abstract int VocabSize { get; }
    public int? BosId { get; }
    public int? EosId { get; }
    public int? PadId { get; }
    public int? UnkId { get; }
    public bool AddBosByDefault { get; }
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialTokens;
    public IReadOnlyCollection<AddedToken> AddedTokens => _addedById.Values;

    /// <summary>Encodes one piece of plain text (no added tokens inside) that starts at
    /// <paramref name="offset"/> of the whole input.</summary>
    protected abstract void EncodeSegment(string text, int offset, List<int> ids);

    /// <summary>Bytes of a model (non-added) token.</summary>
    protected abstract byte[] ModelTokenBytes(int id, bool atStart);

    /// <summary>True for model tokens that are control tokens (e.g. &lt;s&gt; in a SentencePiece vocab).</summary>
    protected virtual bool IsModelControl(int id) => id == BosId || id == EosId;

    public abstract string? IdToToken(int id);
    public abstract int? TokenToId(string token);

    public int[] Encode(string text, bool addBos = false, bool addEos = false, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addBos)
        {
            if (BosId is null) throw new InvalidOperationException($"{GetType().Name}.Encode: addBos requested but this tokenizer has no BOS token");
            ids.Add(BosId.Value);
        }
        if (_splitter.IsEmpty) { if (text.Length > 0) EncodeSegment(text, 0, ids); }
        else
        {
            foreach (var piece in _splitter.Split(text, parseSpecial))
            {
                if (piece.Id is int id) ids.Add(id);
                else EncodeSegment(piece.Text!, piece.Offset, ids);
            }
        }
        if (addEos)
        {
            if (EosId is null) throw new InvalidOperationException($"{GetType().Name}.Encode: addEos requested but this tokenizer has no EOS token");
            ids.Add(EosId.Value);
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false) => StreamingDecoder.DecodeAll(this, ids, skipSpecial);

    public StreamingDecoder CreateStreamingDecoder(bool skipSpecial = false) => new(this, skipSpecial);

    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var t) ? t.Special : IsModelControl(id);

    public ReadOnlySpan<byte> TokenBytes(int id, bool atStart)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"{GetType().Name}: token id out of range [0, {VocabSize})");
        if (_addedById.TryGetValue(id, out var t)) return Encoding.UTF8.GetBytes(t.Content);
        return ModelTokenBytes(id, atStart);
    }

    /// <summary>The added token with this id, if any.</summary>
    protected bool TryGetAdded(int id, out AddedToken token) => _addedById.TryGetValue(id, out token!);
}
