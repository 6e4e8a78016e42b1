using System.Globalization;
using System.Text;

namespace EdgeTune.Text.Internal.Jinja;

internal enum SegmentKind { Text, Output, Block }

/// <summary>A piece of template source: literal text, or the inside of a {{ }} / {% %} tag.</summary>
internal sealed record Segment(SegmentKind Kind, string Content, int Line);

internal enum TokKind { Name, String, Int, Float, Op, End }

internal readonly record struct Tok(TokKind Kind, string Text, object? Value, int Line);

/// <summary>
/// Splits a Jinja template into text and tags, applying whitespace control as Hugging Face's chat-template
/// environment does (trim_blocks and lstrip_blocks on; "-" strips all whitespace on that side, "+" disables
/// lstrip/trim for that tag), and tokenizes the expressions inside tags.
/// </summary>
internal static class JinjaLexer
{
    private sealed record RawTag(SegmentKind Kind, char Open, string Content, bool StripLeft, bool StripRight, bool NoLStrip, bool NoTrim, int Line);

    public static List<Segment> Split(string src)
    {
        var items = new List<object>(); // string (text) or RawTag
        int pos = 0, line = 1;
        var text = new StringBuilder();
        while (pos < src.Length)
        {
            int open = FindOpen(src, pos);
            if (open < 0) { text.Append(src, pos, src.Length - pos); break; }
            text.Append(src, pos, open - pos);
            line += CountNewlines(src, pos, open);
            char kind = src[open + 1];
            int p = open + 2;
            bool stripLeft = p < src.Length && src[p] == '-';
            bool noLStrip = p < src.Length && src[p] == '+';
            if (stripLeft || noLStrip) p++;
            string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int end = kind == '#' ? src.IndexOf(close, p, StringComparison.Ordinal) : FindClose(src, p, close);
            if (end < 0) throw new ChatTemplateException($"chat template line {line}: unclosed '{{{kind}' tag");
            bool stripRight = end > p && src[end - 1] == '-';
            bool noTrim = end > p && src[end - 1] == '+';
            string content = src[p..(stripRight || noTrim ? end - 1 : end)];
            items.Add(text.ToString());
            text.Clear();
            items.Add(new RawTag(kind == '{' ? SegmentKind.Output : SegmentKind.Block, kind, content, stripLeft, stripRight, noLStrip, noTrim, line));
            line += CountNewlines(src, open, end);
            pos = end + 2;
        }
        items.Add(text.ToString());

        // Whitespace control on the text pieces around each tag.
        for (int i = 1; i < items.Count; i += 2)
        {
            var tag = (RawTag)items[i];
            string before = (string)items[i - 1];
            if (tag.StripLeft) before = before.TrimEnd();
            else if (tag.Open != '{' && !tag.NoLStrip)
            {
                int nl = before.LastIndexOf('\n');
                string tail = before[(nl + 1)..];
                bool atLineStart = nl >= 0 || i == 1; // a newline, or the very start of the template, precedes the tag
                if (atLineStart && tail.All(c => c == ' ' || c == '\t')) before = before[..(nl + 1)];
            }
            items[i - 1] = before;
            string after = (string)items[i + 1];
            if (tag.StripRight) after = after.TrimStart();
            else if (tag.Open != '{' && !tag.NoTrim)
            {
                if (after.StartsWith("\r\n", StringComparison.Ordinal)) after = after[2..];
                else if (after.StartsWith('\n')) after = after[1..];
            }
            items[i + 1] = after;
        }

        var segments = new List<Segment>();
        int curLine = 1;
        foreach (var item in items)
        {
            if (item is string s) { if (s.Length > 0) segments.Add(new Segment(SegmentKind.Text, s, curLine)); }
            else
            {
                var t = (RawTag)item;
                curLine = t.Line;
                if (t.Open != '#') segments.Add(new Segment(t.Kind, t.Content, t.Line));
            }
        }
        return segments;
    }

    private static int CountNewlines(string s, int from, int to)
    {
        int n = 0;
        for (int i = from; i < to && i < s.Length; i++) if (s[i] == '\n') n++;
        return n;
    }

    private static int FindOpen(string s, int from)
    {
        for (int i = s.IndexOf('{', from); i >= 0 && i + 1 < s.Length; i = s.IndexOf('{', i + 1))
            if (s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>The closing delimiter outside string literals (so "{{ '}}' }}" works).</summary>
    private static int FindClose(string s, int from, string close)
    {
        char quote = '\0';
        for (int i = from; i + 1 < s.Length; i++)
        {
            char c = s[i];
            if (quote != '\0')
            {
                if (c == '\\') i++;
                else if (c == quote) quote = '\0';
            }
            else if (c is '\'' or '"') quote = c;
            else if (c == close[0] && s[i + 1] == close[1]) return i;
            else if (c == '-' && i + 2 < s.Length && s[i + 1] == close[0] && s[i + 2] == close[1]) return i + 1;
        }
        return -1;
    }

    private static readonly string[] Ops = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="];

    public static List<Tok> Tokenize(string src, int line)
    {
        var toks = new List<Tok>();
        int i = 0;
        while (i < src.Length)
        {
            char c = src[i];
            if (char.IsWhiteSpace(c)) { if (c == '\n') line++; i++; continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int s = i;
                while (i < src.Length && (char.IsLetterOrDigit(src[i]) || src[i] == '_')) i++;
                toks.Add(new Tok(TokKind.Name, src[s..i], null, line));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                int s = i;
                while (i < src.Length && (char.IsAsciiDigit(src[i]) || src[i] == '_')) i++;
                bool isFloat = false;
                if (i + 1 < src.Length && src[i] == '.' && char.IsAsciiDigit(src[i + 1]))
                {
                    isFloat = true;
                    i++;
                    while (i < src.Length && char.IsAsciiDigit(src[i])) i++;
                }
                string num = src[s..i].Replace("_", "");
                toks.Add(isFloat
                    ? new Tok(TokKind.Float, num, double.Parse(num, CultureInfo.InvariantCulture), line)
                    : new Tok(TokKind.Int, num, long.Parse(num, CultureInfo.InvariantCulture), line));
                continue;
            }
            if (c is '\'' or '"')
            {
                var sb = new StringBuilder();
                int j = i + 1;
                while (true)
                {
                    if (j >= src.Length) throw new ChatTemplateException($"chat template line {line}: unterminated string literal");
                    char d = src[j];
                    if (d == c) break;
                    if (d == '\\' && j + 1 < src.Length)
                    {
                        char e = src[++j];
                        switch (e)
                        {
                            case 'n': sb.Append('\n'); break;
                            case 't': sb.Append('\t'); break;
                            case 'r': sb.Append('\r'); break;
                            case '\\': sb.Append('\\'); break;
                            case '\'': sb.Append('\''); break;
                            case '"': sb.Append('"'); break;
                            case 'u' when j + 4 < src.Length:
                                sb.Append((char)int.Parse(src.AsSpan(j + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                                j += 4;
                                break;
                            default: sb.Append('\\').Append(e); break;
                        }
                    }
                    else sb.Append(d);
                    j++;
                }
                toks.Add(new Tok(TokKind.String, sb.ToString(), sb.ToString(), line));
                i = j + 1;
                continue;
            }
            string? op = null;
            foreach (string o in Ops)
                if (string.CompareOrdinal(src, i, o, 0, o.Length) == 0) { op = o; break; }
            if (op is null) throw new ChatTemplateException($"chat template line {line}: unexpected character '{c}'");
            toks.Add(new Tok(TokKind.Op, op, null, line));
            i += op.Length;
        }
        toks.Add(new Tok(TokKind.End, "", null, line));
        return toks;
    }
}
