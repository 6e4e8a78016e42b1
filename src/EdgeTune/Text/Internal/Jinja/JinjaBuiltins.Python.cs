using System.Globalization;
using System.Text;
using static EdgeTune.Text.Internal.Jinja.JinjaValues;

namespace EdgeTune.Text.Internal.Jinja;

/// <summary>
/// Python methods on strings, lists and dicts that chat templates call (Qwen3: split/rstrip/lstrip/startswith/
/// endswith; others: str.format, find, count, join, list pop/insert, dict update ...), and the less common filters
/// (indent, sort, sum, min, max, attr, round, wordcount, format, tojson with sort_keys/separators). Each follows the
/// Python/Jinja2 behavior a template can observe; anything else stays unknown and is reported by name.
/// </summary>
internal static partial class JinjaBuiltins
{
    private static JinjaCallable? MoreStringMethod(string s, string name) => name switch
    {
        "startswith" => (a, _) => Prefixes(a, "startswith").Any(p => s.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => (a, _) => Prefixes(a, "endswith").Any(p => s.EndsWith(p, StringComparison.Ordinal)),
        "replace" => (a, _) => Replace(s, Str(Arg(a, 0, "replace")), Str(Arg(a, 1, "replace")), a.Count > 2 ? ToLong(a[2]) : -1),
        "split" => (a, kw) => Split(s, SepArg(a, kw), MaxSplit(a, kw), fromRight: false),
        "rsplit" => (a, kw) => Split(s, SepArg(a, kw), MaxSplit(a, kw), fromRight: true),
        "splitlines" => (_, _) => SplitLines(s),
        "format" => (a, kw) => BraceFormat(s, a, kw),
        "find" => (a, _) => (long)s.IndexOf(Str(Arg(a, 0, "find")), StringComparison.Ordinal),
        "rfind" => (a, _) => (long)s.LastIndexOf(Str(Arg(a, 0, "rfind")), StringComparison.Ordinal),
        "index" => (a, _) => s.IndexOf(Str(Arg(a, 0, "index")), StringComparison.Ordinal) is var i and >= 0 ? (long)i
            : throw new ChatTemplateException($"chat template: str.index: substring {Repr(a[0])} not found"),
        "count" => (a, _) => CountOccurrences(s, Str(Arg(a, 0, "count"))),
        "join" => (a, _) => string.Join(s, Iterate(Arg(a, 0, "join"), 0).Select(Str)),
        "removeprefix" => (a, _) => Str(Arg(a, 0, "removeprefix")) is var p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s,
        "removesuffix" => (a, _) => Str(Arg(a, 0, "removesuffix")) is var q && q.Length > 0 && s.EndsWith(q, StringComparison.Ordinal) ? s[..^q.Length] : s,
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isnumeric" => (_, _) => s.Length > 0 && s.All(char.IsNumber),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "isalnum" => (_, _) => s.Length > 0 && s.All(char.IsLetterOrDigit),
        "isspace" => (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace),
        "islower" => (_, _) => s.Any(char.IsLetter) && s == s.ToLowerInvariant(),
        "isupper" => (_, _) => s.Any(char.IsLetter) && s == s.ToUpperInvariant(),
        _ => null,
    };

    private static JinjaCallable? ListMethod(List<object?> l, string name) => name switch
    {
        "append" => (a, _) => { l.AddRange(a); return null; },
        "extend" => (a, _) => { l.AddRange(Iterate(Arg(a, 0, "extend"), 0)); return null; },
        "insert" => (a, _) =>
        {
            long i = ToLong(Arg(a, 0, "insert"));
            if (i < 0) i += l.Count;
            l.Insert((int)Math.Clamp(i, 0, l.Count), Arg(a, 1, "insert"));
            return null;
        },
        "pop" => (a, _) =>
        {
            if (l.Count == 0) throw new ChatTemplateException("chat template: pop from an empty list");
            long i = a.Count > 0 ? ToLong(a[0]) : -1;
            if (i < 0) i += l.Count;
            if (i < 0 || i >= l.Count) throw new ChatTemplateException($"chat template: list.pop index {a[0]} out of range");
            var v = l[(int)i];
            l.RemoveAt((int)i);
            return v;
        },
        "index" => (a, _) => l.FindIndex(x => Equal(x, Arg(a, 0, "index"))) is var i and >= 0 ? (long)i
            : throw new ChatTemplateException($"chat template: list.index: {Repr(a[0])} is not in the list"),
        "count" => (a, _) => (long)l.Count(x => Equal(x, Arg(a, 0, "count"))),
        "copy" => (_, _) => l.ToList(),
        _ => null,
    };

    private static JinjaCallable? MoreDictMethod(IDictionary<string, object?> d, string name) => name switch
    {
        "update" => (a, kw) =>
        {
            foreach (var src in a)
            {
                if (src is not IDictionary<string, object?> other)
                    throw new ChatTemplateException($"chat template: dict.update needs a mapping, got {TypeName(src)}");
                foreach (var (k, v) in other) d[k] = v;
            }
            foreach (var (k, v) in kw) d[k] = v;
            return null;
        },
        "setdefault" => (a, _) =>
        {
            string k = Str(Arg(a, 0, "setdefault"));
            if (!d.TryGetValue(k, out var v)) d[k] = v = a.Count > 1 ? a[1] : null;
            return v;
        },
        "pop" => (a, _) =>
        {
            string k = Str(Arg(a, 0, "pop"));
            if (d.Remove(k, out var v)) return v;
            return a.Count > 1 ? a[1] : throw new ChatTemplateException($"chat template: dict.pop: key {Repr(a[0])} not found");
        },
        "copy" => (_, _) => new Dictionary<string, object?>(d, StringComparer.Ordinal),
        _ => null,
    };

    private static object? Arg(List<object?> a, int i, string method) =>
        i < a.Count ? a[i] : throw new ChatTemplateException($"chat template: {method}() needs at least {i + 1} argument(s), got {a.Count}");

    /// <summary>startswith/endswith take a string or a tuple (list) of strings.</summary>
    private static IEnumerable<string> Prefixes(List<object?> a, string method) =>
        Arg(a, 0, method) is List<object?> many ? many.Select(Str) : [Str(a[0])];

    /// <summary>Python str.splitlines(): no empty piece after a final line break.</summary>
    private static List<object?> SplitLines(string s)
    {
        if (s.Length == 0) return [];
        string[] parts = s.ReplaceLineEndings("\n").Split('\n');
        int n = parts[^1].Length == 0 ? parts.Length - 1 : parts.Length;
        return parts.Take(n).Select(p => (object?)p).ToList();
    }

    private static string Replace(string s, string old, string @new, long count)
    {
        if (count < 0) return old.Length == 0 ? string.Concat(s.Select(c => @new + c)) + @new : s.Replace(old, @new, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int pos = 0;
        for (long n = 0; n < count && old.Length > 0; n++)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0) break;
            sb.Append(s, pos, i - pos).Append(@new);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    private static long CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        long n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static string? SepArg(List<object?> a, Dictionary<string, object?> kw) =>
        (a.Count > 0 ? a[0] : kw.GetValueOrDefault("sep")) switch
        {
            null or Undefined => null,
            "" => throw new ChatTemplateException("chat template: split: empty separator"),
            string sep => sep,
            var o => throw new ChatTemplateException($"chat template: split separator must be a string or none, got {TypeName(o)}"),
        };

    private static long MaxSplit(List<object?> a, Dictionary<string, object?> kw) =>
        a.Count > 1 ? ToLong(a[1]) : kw.TryGetValue("maxsplit", out var m) ? ToLong(m) : -1;

    /// <summary>Python str.split / str.rsplit: with a separator every occurrence splits (empty pieces kept); without
    /// one, runs of whitespace split and leading/trailing whitespace is dropped; maxsplit limits the number of cuts.</summary>
    private static List<object?> Split(string s, string? sep, long maxSplit, bool fromRight)
    {
        var parts = new List<string>();
        if (sep is not null)
        {
            if (maxSplit < 0) parts.AddRange(s.Split(sep));
            else if (!fromRight) parts.AddRange(s.Split(sep, (int)Math.Min(int.MaxValue, maxSplit + 1)));
            else
            {
                string rest = s;
                for (long n = 0; n < maxSplit; n++)
                {
                    int i = rest.LastIndexOf(sep, StringComparison.Ordinal);
                    if (i < 0) break;
                    parts.Insert(0, rest[(i + sep.Length)..]);
                    rest = rest[..i];
                }
                parts.Insert(0, rest);
            }
            return parts.Select(p => (object?)p).ToList();
        }
        string t = s;
        long cuts = maxSplit < 0 ? long.MaxValue : maxSplit;
        if (!fromRight)
        {
            int i = 0;
            while (true)
            {
                while (i < t.Length && char.IsWhiteSpace(t[i])) i++;
                if (i >= t.Length) break;
                if (parts.Count == cuts) { parts.Add(t[i..]); break; } // the rest keeps its trailing whitespace
                int j = i;
                while (j < t.Length && !char.IsWhiteSpace(t[j])) j++;
                parts.Add(t[i..j]);
                i = j;
            }
        }
        else
        {
            int j = t.Length;
            while (true)
            {
                while (j > 0 && char.IsWhiteSpace(t[j - 1])) j--;
                if (j == 0) break;
                if (parts.Count == cuts) { parts.Insert(0, t[..j]); break; } // the rest keeps its leading whitespace
                int i = j;
                while (i > 0 && !char.IsWhiteSpace(t[i - 1])) i--;
                parts.Insert(0, t[i..j]);
                j = i;
            }
        }
        return parts.Select(p => (object?)p).ToList();
    }

    /// <summary>Python str.format with "{}", "{0}", "{name}", "{{"/"}}" and the format specs "", "s", "d" (others are
    /// reported as unsupported).</summary>
    private static string BraceFormat(string fmt, List<object?> args, Dictionary<string, object?> kw)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c == '}' && i + 1 < fmt.Length && fmt[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            if (i + 1 < fmt.Length && fmt[i + 1] == '{') { sb.Append('{'); i++; continue; }
            int close = fmt.IndexOf('}', i + 1);
            if (close < 0) throw new ChatTemplateException($"chat template: str.format: unmatched '{{' in {Repr(fmt)}");
            string field = fmt[(i + 1)..close];
            string spec = "";
            int colon = field.IndexOf(':');
            if (colon >= 0) { spec = field[(colon + 1)..]; field = field[..colon]; }
            object? value;
            if (field.Length == 0) value = auto < args.Count ? args[auto++] : throw new ChatTemplateException($"chat template: str.format: not enough arguments for {Repr(fmt)}");
            else if (int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out int k))
                value = k < args.Count ? args[k] : throw new ChatTemplateException($"chat template: str.format: argument {k} missing for {Repr(fmt)}");
            else value = kw.TryGetValue(field, out var named) ? named : throw new ChatTemplateException($"chat template: str.format: no argument named '{field}'");
            if (spec is not ("" or "s" or "d")) throw new ChatTemplateException($"chat template: str.format spec ':{spec}' is not supported");
            sb.Append(Str(value));
            i = close;
        }
        return sb.ToString();
    }

    private static object? ToJsonFilter(object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        object? ind = kw.TryGetValue("indent", out var i) ? i : a.Count > 0 ? a[0] : null;
        int? indent = ind is long n ? (int)n : null;
        bool sortKeys = kw.TryGetValue("sort_keys", out var sk) && Truthy(sk);
        if (sortKeys) v = SortKeys(v);
        if (!kw.TryGetValue("separators", out var seps) || seps is null) return ToJson(v, indent);
        if (seps is not List<object?> { Count: 2 } pair || pair[0] is not string item || pair[1] is not string key)
            throw new ChatTemplateException($"chat template line {line}: tojson separators must be a pair of strings, got {Repr(seps)}");
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0, item, key);
        return sb.ToString();
    }

    private static object? SortKeys(object? v) => v switch
    {
        IDictionary<string, object?> d => d.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (acc, kv) => { acc[kv.Key] = SortKeys(kv.Value); return acc; }),
        List<object?> l => l.Select(SortKeys).ToList(),
        _ => v,
    };

    /// <summary>json.dumps with explicit separators (item separator after each element but the last, key separator
    /// after each key); scalars are written by <see cref="JinjaValues.ToJson"/>.</summary>
    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth, string itemSep, string keySep)
    {
        List<(string? Key, object? Value)>? items = v switch
        {
            IDictionary<string, object?> d => d.Select(kv => ((string?)kv.Key, kv.Value)).ToList(),
            List<object?> l => l.Select(x => ((string?)null, x)).ToList(),
            _ => null,
        };
        if (items is null) { sb.Append(ToJson(v, null)); return; }
        bool dict = v is IDictionary<string, object?>;
        sb.Append(dict ? '{' : '[');
        for (int i = 0; i < items.Count; i++)
        {
            if (indent is int n) sb.Append('\n').Append(' ', n * (depth + 1));
            if (items[i].Key is string k) sb.Append(ToJson(k, null)).Append(keySep);
            WriteJson(sb, items[i].Value, indent, depth + 1, itemSep, keySep);
            if (i + 1 < items.Count) sb.Append(itemSep); // as given, also with indent (Python keeps a trailing space)
        }
        if (indent is int m && items.Count > 0) sb.Append('\n').Append(' ', m * depth);
        sb.Append(dict ? '}' : ']');
    }

    /// <summary>Jinja's sort/min/max compare strings case-insensitively unless case_sensitive is set.</summary>
    private static object? SortKey(object? v, bool caseSensitive) => !caseSensitive && v is string s ? s.ToLowerInvariant() : v;

    private static bool TryMoreFilter(string name, object? v, List<object?> a, Dictionary<string, object?> kw, int line, out object? result)
    {
        switch (name)
        {
            case "format":
                result = PercentFormat(Str(v), a, line);
                return true;
            case "indent":
            {
                int width = a.Count > 0 ? (int)ToLong(a[0]) : kw.TryGetValue("width", out var w) ? (int)ToLong(w) : 4;
                bool first = a.Count > 1 ? Truthy(a[1]) : kw.TryGetValue("first", out var f) && Truthy(f);
                bool blank = a.Count > 2 ? Truthy(a[2]) : kw.TryGetValue("blank", out var b) && Truthy(b);
                string pad = new(' ', width);
                string[] lines = Str(v).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                result = string.Join('\n', lines);
                return true;
            }
            case "sort":
            {
                bool reverse = a.Count > 0 ? Truthy(a[0]) : kw.TryGetValue("reverse", out var r) && Truthy(r);
                bool caseSensitive = a.Count > 1 ? Truthy(a[1]) : kw.TryGetValue("case_sensitive", out var cs) && Truthy(cs);
                string? attr = kw.TryGetValue("attribute", out var at) ? Str(at) : a.Count > 2 ? Str(a[2]) : null;
                var order = Comparer<object?>.Create((x, y) => Compare(x, y, line));
                object? Key(object? x) => SortKey(attr is null ? x : GetAttr(x, attr), caseSensitive);
                var items = Iterate(v, line);
                // Stable like Python's sorted(), also with reverse=True.
                result = (reverse ? items.OrderByDescending(Key, order) : items.OrderBy(Key, order)).ToList();
                return true;
            }
            case "sum":
            {
                string? attr = kw.TryGetValue("attribute", out var at) ? Str(at) : null;
                object? acc = kw.TryGetValue("start", out var st) ? st : 0L;
                foreach (var x in Iterate(v, line)) acc = Binary("+", acc, attr is null ? x : GetAttr(x, attr), line);
                result = acc;
                return true;
            }
            case "min" or "max":
            {
                bool caseSensitive = a.Count > 0 ? Truthy(a[0]) : kw.TryGetValue("case_sensitive", out var cs) && Truthy(cs);
                string? attr = kw.TryGetValue("attribute", out var at) ? Str(at) : null;
                object? Key(object? x) => SortKey(attr is null ? x : GetAttr(x, attr), caseSensitive);
                var items = Iterate(v, line);
                if (items.Count == 0) { result = Undefined.Instance; return true; }
                object? best = items[0];
                foreach (var x in items.Skip(1))
                {
                    int c = Compare(Key(x), Key(best), line);
                    if (name == "min" ? c < 0 : c > 0) best = x;
                }
                result = best;
                return true;
            }
            case "attr":
                result = GetAttr(v, Str(a.Count > 0 ? a[0] : throw new ChatTemplateException($"chat template line {line}: attr needs a name")));
                return true;
            case "round":
            {
                int digits = a.Count > 0 ? (int)ToLong(a[0]) : kw.TryGetValue("precision", out var p) ? (int)ToLong(p) : 0;
                string method = a.Count > 1 ? Str(a[1]) : kw.TryGetValue("method", out var m) ? Str(m) : "common";
                double x = AsDouble(v), scale = Math.Pow(10, digits);
                result = method switch
                {
                    "common" => Math.Round(x, digits, MidpointRounding.ToEven), // Python's round()
                    "floor" => Math.Floor(x * scale) / scale,
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    _ => throw new ChatTemplateException($"chat template line {line}: round method must be common, floor or ceil, got '{method}'"),
                };
                return true;
            }
            case "wordcount":
                result = (long)Split(Str(v), null, -1, fromRight: false).Count;
                return true;
        }
        result = null;
        return false;
    }
}
