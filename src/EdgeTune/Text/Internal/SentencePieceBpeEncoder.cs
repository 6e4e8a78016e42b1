using System.Text;

namespace EdgeTune.Text.Internal;

/// <summary>
/// SentencePiece's BPE encoding of a ModelProto, written after the algorithm of sentencepiece's bpe_model.cc:
/// the normalized text is cut into characters (a user-defined piece that starts at a position is taken whole and
/// never merges), then the adjacent pair whose concatenation is a piece (normal, user-defined or unused) with the
/// highest score is merged, the leftmost one on equal scores, until none is left. Merged unused pieces are split
/// back into the parts they were made of. A final symbol that is no piece becomes its UTF-8 bytes (&lt;0xNN&gt;)
/// with byte fallback, else &lt;unk&gt; (a run of unknowns gives one &lt;unk&gt;).
/// Microsoft.ML.Tokenizers 2.0.1 breaks equal-score ties on the right ("   " gives ▁ ▁▁ where SentencePiece and
/// Hugging Face give ▁▁ ▁), which shows on every run of spaces or repeated characters, so BPE models use this.
/// Normalization is the identity normalizer's (dummy prefix, extra-whitespace removal, "▁" escaping); models with a
/// precompiled character map are left to Microsoft.ML.Tokenizers (<see cref="Supports"/>).
/// </summary>
internal sealed class SentencePieceBpeEncoder
{
    private const char SpaceSymbol = '\u2581';

    private readonly Dictionary<string, int> _mergeable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _mergeableLookup;
    private readonly Dictionary<string, int> _reserved = new(StringComparer.Ordinal); // control, unknown, byte pieces
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reservedLookup;
    private readonly float[] _scores;
    private readonly SentencePieceProto.PieceType[] _types;
    private readonly Dictionary<char, string[]> _userDefined = new(); // by first char, longest first
    private readonly int[] _byteIds = new int[256];
    private readonly SentencePieceProto _proto;

    public SentencePieceBpeEncoder(SentencePieceProto proto)
    {
        _proto = proto;
        int n = proto.Pieces.Count;
        _scores = new float[n];
        _types = new SentencePieceProto.PieceType[n];
        Array.Fill(_byteIds, -1);
        var userDefined = new List<string>();
        for (int id = 0; id < n; id++)
        {
            var p = proto.Pieces[id];
            _scores[id] = p.Score;
            _types[id] = p.Type;
            if (p.Type is SentencePieceProto.PieceType.Normal or SentencePieceProto.PieceType.UserDefined or SentencePieceProto.PieceType.Unused)
                _mergeable.TryAdd(p.Text, id);
            else _reserved.TryAdd(p.Text, id);
            if (p.Type == SentencePieceProto.PieceType.UserDefined && p.Text.Length > 0) userDefined.Add(p.Text);
            if (p.Type == SentencePieceProto.PieceType.Byte && p.Text.Length == 6 && p.Text.StartsWith("<0x", StringComparison.Ordinal)
                && byte.TryParse(p.Text.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out byte b))
                _byteIds[b] = id;
        }
        foreach (var g in userDefined.GroupBy(u => u[0]))
            _userDefined[g.Key] = g.OrderByDescending(u => u.Length).ToArray();
        _mergeableLookup = _mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        _reservedLookup = _reserved.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>True for BPE models with the identity normalizer (no precompiled character map), which this
    /// class reproduces exactly; others are encoded by Microsoft.ML.Tokenizers.</summary>
    public static bool Supports(SentencePieceProto proto) =>
        proto.Model == SentencePieceProto.ModelType.Bpe && proto.PrecompiledCharsmapLength == 0;

    /// <summary>SentencePiece's normalizer without a character map: optional removal of leading, trailing and
    /// repeated spaces, the dummy-prefix space (at the end with treat_whitespace_as_suffix), spaces written as "▁".
    /// Only U+0020 counts as a space, as in SentencePiece.</summary>
    public string Normalize(string text)
    {
        int i = 0;
        if (_proto.RemoveExtraWhitespaces) while (i < text.Length && text[i] == ' ') i++;
        if (i == text.Length) return "";
        char ws = _proto.EscapeWhitespaces ? SpaceSymbol : ' ';
        var sb = new StringBuilder(text.Length + 1);
        if (_proto.AddDummyPrefix && !_proto.TreatWhitespaceAsSuffix) sb.Append(ws);
        bool prevSpace = _proto.RemoveExtraWhitespaces;
        for (; i < text.Length; i++)
        {
            if (text[i] == ' ')
            {
                if (!(prevSpace && _proto.RemoveExtraWhitespaces)) sb.Append(ws);
                prevSpace = true;
            }
            else
            {
                sb.Append(text[i]);
                prevSpace = false;
            }
        }
        if (_proto.RemoveExtraWhitespaces) while (sb.Length > 0 && sb[^1] == ws) sb.Length--;
        if (_proto.AddDummyPrefix && _proto.TreatWhitespaceAsSuffix) sb.Append(ws);
        return sb.ToString();
    }

    public void Encode(string text, int unkId, List<int> ids)
    {
        string s = Normalize(text);
        if (s.Length == 0) return;

        // Initial symbols: user-defined pieces (frozen) or single code points.
        var start = new List<int>(s.Length);
        var frozenList = new List<bool>(s.Length);
        for (int i = 0; i < s.Length;)
        {
            int len = 0;
            if (_userDefined.TryGetValue(s[i], out var cands))
                foreach (string u in cands)
                    if (string.CompareOrdinal(s, i, u, 0, u.Length) == 0) { len = u.Length; break; }
            bool frozen = len > 0;
            if (!frozen) len = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            start.Add(i);
            frozenList.Add(frozen);
            i += len;
        }
        int n = start.Count;
        var st = start.ToArray();
        var frozenArr = frozenList.ToArray();
        var len2 = new int[n];
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        for (int k = 0; k < n; k++)
        {
            len2[k] = (k + 1 < n ? st[k + 1] : s.Length) - st[k];
            next[k] = k + 1 < n ? k + 1 : -1;
            prev[k] = k - 1;
            alive[k] = true;
        }

        Dictionary<string, (string Left, string Right)>? revMerge = null;
        var agenda = new PriorityQueue<(int Left, int Right, int LeftLen, int RightLen, int Id), (float NegScore, int Left)>();
        void Consider(int left)
        {
            if (left < 0) return;
            int right = next[left];
            if (right < 0 || frozenArr[left] || frozenArr[right]) return;
            if (!_mergeableLookup.TryGetValue(s.AsSpan(st[left], len2[left] + len2[right]), out int id)) return;
            agenda.Enqueue((left, right, len2[left], len2[right], id), (-_scores[id], left));
            if (_types[id] == SentencePieceProto.PieceType.Unused)
            {
                revMerge ??= new Dictionary<string, (string, string)>(StringComparer.Ordinal);
                revMerge[s.Substring(st[left], len2[left] + len2[right])] = (s.Substring(st[left], len2[left]), s.Substring(st[right], len2[right]));
            }
        }
        for (int k = 0; k + 1 < n; k++) Consider(k);

        while (agenda.TryDequeue(out var e, out _))
        {
            if (!alive[e.Left] || !alive[e.Right] || next[e.Left] != e.Right || len2[e.Left] != e.LeftLen || len2[e.Right] != e.RightLen) continue;
            len2[e.Left] += len2[e.Right];
            alive[e.Right] = false;
            next[e.Left] = next[e.Right];
            if (next[e.Right] >= 0) prev[next[e.Right]] = e.Left;
            Consider(prev[e.Left]);
            Consider(e.Left);
        }

        bool prevUnk = false;
        for (int k = 0; k >= 0; k = next[k]) Emit(s.Substring(st[k], len2[k]), unkId, revMerge, ids, ref prevUnk);
    }

    private void Emit(string piece, int unkId, Dictionary<string, (string Left, string Right)>? revMerge, List<int> ids, ref bool prevUnk)
    {
        int id = Id(piece);
        if (id >= 0 && _types[id] == SentencePieceProto.PieceType.Unused && revMerge is not null && revMerge.TryGetValue(piece, out var parts))
        {
            Emit(parts.Left, unkId, revMerge, ids, ref prevUnk);
            Emit(parts.Right, unkId, revMerge, ids, ref prevUnk);
            return;
        }
        if (id >= 0 && id != unkId) { ids.Add(id); prevUnk = false; return; }
        if (_proto.ByteFallback)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(piece);
            if (bytes.All(b => _byteIds[b] >= 0))
            {
                foreach (byte b in bytes) ids.Add(_byteIds[b]);
                prevUnk = false;
                return;
            }
        }
        if (!prevUnk) ids.Add(unkId);
        prevUnk = true;
    }

    /// <summary>SentencePiece's PieceToId: reserved pieces first, then the mergeable ones; -1 when absent.</summary>
    private int Id(string piece) =>
        _reservedLookup.TryGetValue(piece, out int r) ? r : _mergeableLookup.TryGetValue(piece, out int m) ? m : -1;
}
