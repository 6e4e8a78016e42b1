using System.Globalization;
using System.Text;

namespace EdgeTune.Text.Internal;

/// <summary>
/// Unicode canonical decomposition without ICU: the product runs with InvariantGlobalization, where
/// <see cref="string.Normalize(NormalizationForm)"/> leaves precomposed letters as they are, so "é" would never become
/// "e" + U+0301 and accent stripping would do nothing. Decomposes each code point by the generated table of the
/// Unicode Character Database's canonical mappings (CanonicalDecomposition.Table.cs, already applied recursively) and
/// Hangul syllables by the algorithm of Unicode §3.12. Categories come from <see cref="Rune.GetUnicodeCategory"/>, which
/// works in invariant mode.
/// </summary>
/// <remarks>This is NFD without the canonical reordering of combining marks. Callers here remove the non-spacing marks
/// right after (<see cref="StripNonSpacingMarks"/>), so the order of the marks is not observable except among spacing
/// marks with a non-zero combining class, which are rare and left in input order.</remarks>
internal static partial class CanonicalDecomposition
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    private const int NCount = VCount * TCount, SCount = LCount * NCount;

    /// <summary>Appends the canonical decomposition of <paramref name="r"/> (itself when it has none).</summary>
    public static void Append(StringBuilder sb, Rune r)
    {
        int c = r.Value;
        int s = c - SBase;
        if ((uint)s < SCount)
        {
            sb.Append((char)(LBase + s / NCount)).Append((char)(VBase + s % NCount / TCount));
            if (s % TCount != 0) sb.Append((char)(TBase + s % TCount));
            return;
        }
        int i = Keys.BinarySearch(c);
        if (i < 0) { sb.Append(r.ToString()); return; }
        sb.Append(Chars, Starts[i], Starts[i + 1] - Starts[i]);
    }

    /// <summary>The canonical decomposition of <paramref name="text"/> (NFD up to the order of combining marks; see remarks).</summary>
    public static string Decompose(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sb = new StringBuilder(text.Length + 8);
        foreach (var r in text.EnumerateRunes()) Append(sb, r);
        return sb.ToString();
    }

    /// <summary>Hugging Face's StripAccents (and BertNormalizer's strip_accents): canonical decomposition, then every
    /// character of category Mn (non-spacing mark) removed.</summary>
    public static string StripNonSpacingMarks(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var stripped = new StringBuilder(text.Length);
        foreach (var r in Decompose(text).EnumerateRunes())
            if (Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark) stripped.Append(r.ToString());
        return stripped.ToString();
    }
}
