using System.Globalization;
using System.Text;
using EdgeTune.Text.Internal;

namespace EdgeTune.Text;

/// <summary>Where the "▁" dummy prefix goes (tokenizer.json Prepend normalizer / Metaspace prepend_scheme).</summary>
public enum PrependScheme
{
    /// <summary>Before every plain segment (Prepend normalizer; Metaspace "always").</summary>
    Always,
    /// <summary>Only before the segment at the very start of the input (Metaspace "first").</summary>
    First,
    /// <summary>Never.</summary>
    Never,
}

/// <summary>
/// SentencePiece-style BPE as Hugging Face tokenizer.json writes it (Llama 2, TinyLlama, Mistral, Phi-3):
/// spaces become "▁", a "▁" dummy prefix is prepended, the whole segment (no pre-tokenizer split) is merged by
/// merge rank, and characters missing from the vocabulary fall back to &lt;0xNN&gt; byte tokens. Built with
/// <see cref="FromScores"/> (a GGUF "llama" vocabulary), pairs merge by the score of the merged piece instead.
/// Microsoft.ML.Tokenizers' BpeTokenizer has no byte fallback and its SentencePieceTokenizer only reads a
/// SentencePiece ModelProto, so this merge step is our own (<see cref="PairMerger"/>).
/// </summary>
public sealed class SentencePieceBpeTokenizer : TokenizerBase
{
    public const char SpaceMarker = '\u2581';

    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _pieces;
    private readonly Dictionary<long, (double Priority, int Merged)> _merges = new(); // key: left << 32 | right
    private readonly Dictionary<int, int> _mergeRankOf = new(); // merged id -> rank of the first merge producing it
    private readonly float[]? _scores; // SentencePiece scores, when built from them (FromScores)
    private readonly Dictionary<int, int> _codepointIds; // single-code-point pieces
    private readonly int[] _byteIds; // -1 where <0xNN> is absent
    private readonly bool _byteFallback;
    private readonly PrependScheme _prepend;
    private readonly bool _metaspace;
    private readonly int _vocabSize;

    /// <param name="vocab">piece to id.</param>
    /// <param name="merges">pairs in rank order (rank = index).</param>
    /// <param name="metaspace">Metaspace pre-tokenizer semantics: spaces are replaced first and the "▁" prefix is
    /// only added when the segment does not already start with one (the Prepend normalizer always adds it).</param>
    public SentencePieceBpeTokenizer(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges,
        IEnumerable<AddedToken> addedTokens, PrependScheme prepend = PrependScheme.Always, bool byteFallback = true,
        int? bosId = null, int? eosId = null, int? padId = null, int? unkId = null, bool addBosByDefault = true,
        bool metaspace = false)
        : this(vocab, null, null, addedTokens, prepend, byteFallback, bosId, eosId, padId, unkId, addBosByDefault, metaspace)
    {
        ArgumentNullException.ThrowIfNull(merges);
        int rank = 0;
        foreach (var (l, r) in merges)
        {
            if (_vocab.TryGetValue(l, out int a) && _vocab.TryGetValue(r, out int b) && _vocab.TryGetValue(l + r, out int m))
            {
                _merges.TryAdd(PairKey(a, b), (rank, m));
                _mergeRankOf.TryAdd(m, rank);
            }
            rank++;
        }
    }

    private SentencePieceBpeTokenizer(IReadOnlyDictionary<string, int> vocab, string?[]? pieces, float[]? scores,
        IEnumerable<AddedToken> addedTokens, PrependScheme prepend, bool byteFallback,
        int? bosId, int? eosId, int? padId, int? unkId, bool addBosByDefault, bool metaspace)
        : base(addedTokens ?? throw new ArgumentNullException(nameof(addedTokens)), bosId, eosId, padId, unkId, addBosByDefault)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        int max = (pieces?.Length ?? 0) - 1;
        foreach (var id in _vocab.Values) max = Math.Max(max, id);
        foreach (var t in AddedTokens) max = Math.Max(max, t.Id);
        _vocabSize = max + 1;
        _pieces = new string?[_vocabSize];
        pieces?.CopyTo(_pieces, 0);
        foreach (var (piece, id) in _vocab)
        {
            if (id < 0) throw new ArgumentException($"SentencePieceBpeTokenizer: negative id {id} for piece '{piece}'", nameof(vocab));
            _pieces[id] ??= piece;
        }
        _scores = scores;
        _codepointIds = new Dictionary<int, int>();
        foreach (var (piece, id) in _vocab)
            if (piece.Length == 1 || (piece.Length == 2 && char.IsSurrogatePair(piece[0], piece[1])))
                _codepointIds[char.ConvertToUtf32(piece, 0)] = id;
        _byteIds = new int[256];
        for (int i = 0; i < 256; i++) _byteIds[i] = _vocab.TryGetValue($"<0x{i:X2}>", out int id) ? id : -1;
        _byteFallback = byteFallback;
        _prepend = prepend;
        _metaspace = metaspace;
    }

    /// <summary>
    /// SentencePiece BPE driven by piece scores, as a SentencePiece model and llama.cpp's "llama" vocabulary (GGUF
    /// <c>tokenizer.ggml.tokens</c> + <c>tokenizer.ggml.scores</c>) run it: two adjacent pieces merge when their
    /// concatenation is a vocabulary piece, the one with the highest score first, ties to the leftmost pair.
    /// The merge table is every split of every vocabulary piece into two vocabulary pieces.
    /// </summary>
    /// <param name="pieces">the piece of each id ("▁" for a space, "&lt;0xNN&gt;" for byte tokens).</param>
    /// <param name="scores">one score per piece.</param>
    /// <param name="addedTokens">tokens matched on the raw text before the model (control and user-defined pieces); they
    /// are not part of the model vocabulary, so no merge produces them.</param>
    /// <exception cref="ArgumentException">The lists differ in length, or an added token's id is outside them.</exception>
    public static SentencePieceBpeTokenizer FromScores(IReadOnlyList<string> pieces, IReadOnlyList<float> scores,
        IEnumerable<AddedToken> addedTokens, PrependScheme prepend = PrependScheme.Always, bool byteFallback = true,
        int? bosId = null, int? eosId = null, int? padId = null, int? unkId = null, bool addBosByDefault = true)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(addedTokens);
        if (pieces.Count != scores.Count)
            throw new ArgumentException($"SentencePieceBpeTokenizer.FromScores: {pieces.Count} pieces but {scores.Count} scores");
        var added = addedTokens.ToList();
        var addedIds = new HashSet<int>();
        foreach (var t in added)
        {
            if ((uint)t.Id >= (uint)pieces.Count)
                throw new ArgumentException($"SentencePieceBpeTokenizer.FromScores: added token '{t.Content}' has id {t.Id}, outside the {pieces.Count} pieces");
            addedIds.Add(t.Id);
        }
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < pieces.Count; id++)
        {
            ArgumentNullException.ThrowIfNull(pieces[id], $"pieces[{id}]");
            if (!addedIds.Contains(id)) vocab.TryAdd(pieces[id], id); // a repeated piece: the first id is the one text maps to
        }
        var tok = new SentencePieceBpeTokenizer(vocab, [.. pieces], [.. scores], added, prepend, byteFallback,
            bosId, eosId, padId, unkId, addBosByDefault, metaspace: false);
        foreach (var (piece, merged) in vocab)
        {
            for (int cut = 1; cut < piece.Length; cut++)
            {
                if (char.IsLowSurrogate(piece[cut])) continue; // never split a surrogate pair
                if (vocab.TryGetValue(piece[..cut], out int left) && vocab.TryGetValue(piece[cut..], out int right))
                    tok._merges.TryAdd(PairKey(left, right), (-(double)scores[merged], merged));
            }
        }
        return tok;
    }

    public override int VocabSize => _vocabSize;

    /// <summary>Number of merge rules that apply to this vocabulary.</summary>
    public int MergeCount => _merges.Count;

    /// <summary>
    /// A SentencePiece-style score for <paramref name="id"/>, derived from the merge ranks (tokenizer.json has no
    /// scores): −rank of the first merge that produces the piece, so earlier merges score higher; pieces no merge
    /// produces (single characters, bytes, added tokens) score −(merge count + id). Merging pairs by this score
    /// reproduces rank order, which is what llama.cpp's SentencePiece ("llama") tokenizer does with GGUF scores.
    /// A tokenizer built by <see cref="FromScores"/> returns the scores it was given.
    /// </summary>
    public float Score(int id)
    {
        if ((uint)id >= (uint)_vocabSize) throw new ArgumentOutOfRangeException(nameof(id), id, $"SentencePieceBpeTokenizer: token id out of range [0, {_vocabSize})");
        if (_scores is not null) return id < _scores.Length ? _scores[id] : -(float)(_scores.Length + id);
        return _mergeRankOf.TryGetValue(id, out int r) ? -r : -(float)(_merges.Count + id);
    }

    public override string? IdToToken(int id)
    {
        if ((uint)id >= (uint)_vocabSize) return null;
        if (TryGetAdded(id, out var t)) return t.Content;
        return _pieces[id];
    }

    public override int? TokenToId(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _vocab.TryGetValue(token, out int id) ? id : null;

    protected override void EncodeSegment(string text, int offset, List<int> ids)
    {
        bool prepend = _prepend == PrependScheme.Always || (_prepend == PrependScheme.First && offset == 0);
        string normalized = text.Replace(' ', SpaceMarker);
        if (prepend && !(_metaspace && normalized.StartsWith(SpaceMarker))) normalized = SpaceMarker + normalized;
        var symbols = new List<int>(normalized.Length);
        for (int i = 0; i < normalized.Length;)
        {
            int len = char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1]) ? 2 : 1;
            int cp = len == 2 ? char.ConvertToUtf32(normalized[i], normalized[i + 1]) : normalized[i];
            if (_codepointIds.TryGetValue(cp, out int id)) symbols.Add(id);
            else AddUnknown(normalized.Substring(i, len), symbols);
            i += len;
        }
        PairMerger.Merge(symbols, TryMerge);
        ids.AddRange(symbols);
    }

    private void AddUnknown(string ch, List<int> symbols)
    {
        if (_byteFallback)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(ch);
            bool all = true;
            foreach (byte b in bytes) all &= _byteIds[b] >= 0;
            if (all)
            {
                foreach (byte b in bytes) symbols.Add(_byteIds[b]);
                return;
            }
        }
        if (UnkId is null) throw new InvalidOperationException($"SentencePieceBpeTokenizer: character U+{char.ConvertToUtf32(ch, 0):X4} is not in the vocabulary and there is no byte fallback or unk token");
        // fuse_unk: consecutive unknowns become one <unk>
        if (symbols.Count == 0 || symbols[^1] != UnkId.Value) symbols.Add(UnkId.Value);
    }

    private bool TryMerge(int left, int right, out double priority, out int merged)
    {
        if (_merges.TryGetValue(PairKey(left, right), out var m)) { priority = m.Priority; merged = m.Merged; return true; }
        priority = 0; merged = -1;
        return false;
    }

    private static long PairKey(int left, int right) => (long)left << 32 | (uint)right;

    protected override bool IsModelControl(int id) => id == BosId || id == EosId || id == UnkId;

    /// <summary>Where the "▁" dummy prefix goes; with <see cref="PrependScheme.Never"/> (Gemma) decoding keeps a
    /// leading space, since the tokenizer never added one.</summary>
    public PrependScheme Prepend => _prepend;

    protected override byte[] ModelTokenBytes(int id, bool atStart) => PieceBytes(_pieces[id], atStart && _prepend != PrependScheme.Never);

    /// <summary>Bytes of a SentencePiece piece: &lt;0xNN&gt; is the raw byte, "▁" is a space; at the start of
    /// the text the dummy-prefix space is dropped.</summary>
    internal static byte[] PieceBytes(string? piece, bool atStart)
    {
        if (piece is null) return [];
        if (piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' &&
            byte.TryParse(piece.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            return [b];
        string text = piece.Replace(SpaceMarker, ' ');
        if (atStart && text.Length > 0 && text[0] == ' ') text = text[1..];
        return Encoding.UTF8.GetBytes(text);
    }
}
