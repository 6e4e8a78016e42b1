namespace EdgeTune.Text.Internal;

/// <summary>Cuts a text into plain segments and added-token ids (longest match wins, leftmost first).</summary>
internal sealed class SpecialTokenSplitter
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public SpecialTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
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
            AddedToken? hit = null;
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                foreach (var t in candidates)
                {
                    if ((includeSpecial || !t.Special) && string.CompareOrdinal(text, i, t.Content, 0, t.Content.Length) == 0)
                    {
                        hit = t;
                        break;
                    }
                }
            }
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
}
