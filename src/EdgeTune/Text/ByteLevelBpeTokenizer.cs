using System.Text;
using System.Text.RegularExpressions;
using EdgeTune.Text.Internal;
using Microsoft.ML.Tokenizers;

namespace EdgeTune.Text;

/// <summary>
/// Byte-level BPE (GPT-2, Qwen2, Llama 3, SmolLM): the text is split by a pre-tokenizer regex, each piece is
/// turned into UTF-8 bytes written in GPT-2's byte alphabet ('Ġ' for a space) and merged by rank. The model
/// step is Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (ByteLevel = true, a <see cref="RegexPreTokenizer"/>);
/// added tokens are split out here first, and decoding maps the byte alphabet back to raw bytes.
/// </summary>
public sealed class ByteLevelBpeTokenizer : TokenizerBase
{
    /// <summary>GPT-2's pre-tokenizer pattern (tokenizers ByteLevel use_regex=true).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2's pre-tokenizer pattern (tokenizer.json Split regex; single digits).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3's pre-tokenizer pattern (tokenizer.json Split regex; digits in runs of up to three). llama.cpp's
    /// "llama-bpe"/"llama3" and "smaug-bpe" pre-tokenizers use it.</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// SmolLM's pre-tokenizer (tokenizer.json: Digits with individual_digits, then ByteLevel's GPT-2 regex) as one
    /// pattern: every digit is a piece of its own, and the GPT-2 alternatives run between digits, where a digit ends
    /// a run of spaces as the end of the text would (hence <c>(?![^\s\p{N}])</c> for GPT-2's <c>(?!\S)</c>).
    /// </summary>
    public const string SmolLMPattern = @"\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly Regex _regex;
    private readonly bool _ignoreMerges;
    private readonly DigitSplit _digits;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokens;
    private readonly byte[]?[] _bytes; // filled on first use
    private readonly bool _nfc;
    private readonly bool _addPrefixSpace;
    private readonly int _vocabSize;

    /// <param name="vocab">byte-alphabet token to id.</param>
    /// <param name="merges">merges in rank order, each "left right".</param>
    /// <param name="pattern">the pre-tokenizer regex (.NET syntax).</param>
    /// <param name="nfc">apply Unicode NFC before encoding (Qwen2's normalizer).</param>
    /// <param name="digits">a Digits pre-tokenizer that splits numbers out before the regex (SmolLM2).</param>
    /// <param name="ignoreMerges">a pre-tokenizer piece that is itself a vocabulary token becomes that token without
    /// merging (tokenizer.json <c>model.ignore_merges</c>, Llama 3; llama.cpp does the same for its "llama-bpe" vocabularies).</param>
    public ByteLevelBpeTokenizer(IReadOnlyDictionary<string, int> vocab, IEnumerable<string> merges, string pattern,
        IEnumerable<AddedToken> addedTokens, bool nfc = false, bool addPrefixSpace = false,
        int? bosId = null, int? eosId = null, int? padId = null, int? unkId = null, bool addBosByDefault = false,
        bool ignoreMerges = false, DigitSplit digits = DigitSplit.None)
        : base(addedTokens, bosId, eosId, padId, unkId, addBosByDefault)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(pattern);
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        var mergeList = merges as IReadOnlyList<string> ?? merges.ToList();
        merges = mergeList;
        Merges = mergeList;
        Pattern = pattern;
        var regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        _regex = regex;
        _ignoreMerges = ignoreMerges;
        _digits = digits;
        _bpe = BpeTokenizer.Create(new BpeOptions(_vocab)
        {
            Merges = merges,
            PreTokenizer = new RegexPreTokenizer(regex, null),
            ByteLevel = true,
        });
        int max = -1;
        foreach (int id in _vocab.Values) max = Math.Max(max, id);
        foreach (var t in AddedTokens) max = Math.Max(max, t.Id);
        _vocabSize = max + 1;
        _tokens = new string?[_vocabSize];
        _bytes = new byte[]?[_vocabSize];
        foreach (var (tok, id) in _vocab) _tokens[id] = tok;
        _nfc = nfc;
        _addPrefixSpace = addPrefixSpace;
    }

    /// <summary>
    /// False when the runtime cannot normalize Unicode (InvariantGlobalization: string.Normalize then leaves
    /// non-ASCII text unchanged). NFC tokenizers (Qwen2) then encode decomposed input (e.g. "e"+U+0301) differently
    /// from Hugging Face; run with DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=0 (and ICU) to get NFC.
    /// </summary>
    public static bool NfcAvailable { get; } = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9";

    /// <summary>The underlying Microsoft.ML.Tokenizers model.</summary>
    public BpeTokenizer Model => _bpe;

    /// <summary>The merges in rank order, each "left right" (as given to the constructor).</summary>
    public IReadOnlyList<string> Merges { get; }

    /// <summary>The pre-tokenizer regex (.NET syntax).</summary>
    public string Pattern { get; }

    /// <summary>True when encoding applies Unicode NFC first (Qwen2).</summary>
    public bool Nfc => _nfc;

    /// <summary>True when a pre-tokenizer piece found whole in the vocabulary skips merging (Llama 3).</summary>
    public bool IgnoreMerges => _ignoreMerges;

    /// <summary>The Digits pre-tokenizer that runs before the regex, if any.</summary>
    public DigitSplit Digits => _digits;

    public override int VocabSize => _vocabSize;

    public override string? IdToToken(int id)
    {
        if ((uint)id >= (uint)_vocabSize) return null;
        return TryGetAdded(id, out var t) ? t.Content : _tokens[id];
    }

    public override int? TokenToId(string token) =>
        SpecialTokens.TryGetValue(token, out int s) ? s : _vocab.TryGetValue(token, out int id) ? id : null;

    protected override void EncodeSegment(string text, int offset, List<int> ids)
    {
        if (_nfc) text = text.Normalize(NormalizationForm.FormC);
        if (_addPrefixSpace && offset == 0 && !text.StartsWith(' ')) text = " " + text;
        if (_digits == DigitSplit.None) EncodeSplit(text, ids);
        else
            foreach (var (start, length) in DigitPieces(text, _digits == DigitSplit.Individual))
                EncodeSplit(text.Substring(start, length), ids);
    }

    private void EncodeSplit(string text, List<int> ids)
    {
        if (!_ignoreMerges)
        {
            ids.AddRange(_bpe.EncodeToIds(text, considerPreTokenization: true, considerNormalization: false));
            return;
        }
        // Split here so that each piece can be looked up whole first; text between matches is a piece too.
        int at = 0;
        foreach (var m in _regex.EnumerateMatches(text))
        {
            if (m.Index > at) EncodePiece(text.AsSpan(at, m.Index - at), ids);
            EncodePiece(text.AsSpan(m.Index, m.Length), ids);
            at = m.Index + m.Length;
        }
        if (at < text.Length) EncodePiece(text.AsSpan(at), ids);
    }

    /// <summary>Cuts <paramref name="text"/> into numeric and non-numeric pieces as HF's Digits pre-tokenizer does
    /// (numeric = Unicode Nd, Nl or No, like Rust's char::is_numeric); with <paramref name="individual"/> each numeric
    /// character is a piece of its own.</summary>
    internal static List<(int Start, int Length)> DigitPieces(string text, bool individual)
    {
        var pieces = new List<(int, int)>();
        int start = 0;
        bool? inNumber = null;
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out int len);
            bool numeric = Rune.IsNumber(rune);
            if (inNumber is bool prev && (numeric != prev || (numeric && individual)))
            {
                pieces.Add((start, i - start));
                start = i;
            }
            inNumber = numeric;
            i += len;
        }
        if (start < text.Length) pieces.Add((start, text.Length - start));
        return pieces;
    }

    private void EncodePiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (piece.IsEmpty) return;
        string s = piece.ToString();
        if (_vocab.TryGetValue(ByteLevelAlphabet.FromText(s), out int whole)) ids.Add(whole);
        else ids.AddRange(_bpe.EncodeToIds(s, considerPreTokenization: false, considerNormalization: false));
    }

    protected override byte[] ModelTokenBytes(int id, bool atStart)
    {
        if (_bytes[id] is { } cached) return cached;
        string? tok = _tokens[id];
        if (tok is null) return [];
        return _bytes[id] = ByteLevelAlphabet.TryGetBytes(tok, out var bytes) ? bytes : Encoding.UTF8.GetBytes(tok);
    }

    protected override bool IsModelControl(int id) => false;
}
