namespace EdgeTune.Text.Internal;

/// <summary>
/// Cuts a text into plain segments and added-token ids (leftmost match first, the longest one at that position).
/// Tokens are indexed by first character and length, so a vocabulary with thousands of added tokens that share a
/// first character (Gemma 3: about 6,400, most of them "&lt;unusedN&gt;") costs one hash lookup per distinct length
/// at each candidate position instead of one comparison per token.
/// </summary>
internal sealed class SpecialTokenSplitter
{
    private sealed class Group
    {
        public int[] LengthsDescending = [];
        public readonly Dictionary<string, AddedToken> ByContent = new(StringComparer.Ordinal);
        public Dictionary<string, AddedToken>.AlternateLookup<ReadOnlySpan<char>> Lookup;
    }

    private readonly Dictionary<char, Group> _byFirstChar = new();

    public SpecialTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0) continue;
            if (!_byFirstChar.TryGetValue(t.Content[0], out var g)) _byFirstChar[t.Content[0]] = g = new Group();
            g.ByContent.TryAdd(t.Content, t); // the first token with a given text wins
        }
        foreach (var g in _byFirstChar.Values)
        {
            g.LengthsDescending = g.ByContent.Keys.Select(k => k.Length).Distinct().OrderDescending().ToArray();
            g.Lookup = g.ByContent.GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>A piece of the split: either plain text (Id is null) starting at Offset, or an added token.</summary>
    public readonly record struct Piece(string? Text, int? Id, int Offset);

    public List<Piece> Split(string text, bool includeSpecial)
    {
        var pieces = new List<Piece>();
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            AddedToken? hit = _byFirstChar.TryGetValue(text[i], out var group) ? Match(group, text, i, includeSpecial) : null;
            if (hit is null) { i++; continue; }
            int plainEnd = i;
            if (hit.LStrip) while (plainEnd > plainStart && char.IsWhiteSpace(text[plainEnd - 1])) plainEnd--;
            if (plainEnd > plainStart) pieces.Add(new Piece(text[plainStart..plainEnd], null, plainStart));
            pieces.Add(new Piece(null, hit.Id, i));
            i += hit.Content.Length;
            if (hit.RStrip) while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            plainStart = i;
        }
        if (plainStart < text.Length) pieces.Add(new Piece(text[plainStart..], null, plainStart));
        return pieces;
    }

    /// <summary>The longest token of <paramref name="group"/> that starts at <paramref name="at"/> (special tokens only
    /// when <paramref name="includeSpecial"/>), or null.</summary>
    private static AddedToken? Match(Group group, string text, int at, bool includeSpecial)
    {
        foreach (int len in group.LengthsDescending)
        {
            if (at + len > text.Length) continue;
            if (group.Lookup.TryGetValue(text.AsSpan(at, len), out var t) && (includeSpecial || !t.Special)) return t;
        }
        return null;
    }
}
