using System.Globalization;
using static EdgeTune.Text.Internal.Jinja.JinjaValues;

namespace EdgeTune.Text.Internal.Jinja;

/// <summary>Global functions, filters, tests, methods and operators of the chat-template Jinja subset.</summary>
internal static partial class JinjaBuiltins
{
    public static Dictionary<string, object?> Globals() => new(StringComparer.Ordinal)
    {
        ["raise_exception"] = (JinjaCallable)((a, _) =>
            throw new ChatTemplateException("chat template raised: " + (a.Count > 0 ? Str(a[0]) : "(no message)"))),
        ["namespace"] = (JinjaCallable)((a, kw) =>
        {
            var ns = new JinjaNamespace();
            foreach (var d in a.OfType<IDictionary<string, object?>>()) foreach (var (k, v) in d) ns[k] = v;
            foreach (var (k, v) in kw) ns[k] = v;
            return ns;
        }),
        ["dict"] = (JinjaCallable)((_, kw) => new Dictionary<string, object?>(kw, StringComparer.Ordinal)),
        ["range"] = (JinjaCallable)((a, _) =>
        {
            long start = 0, stop, step = 1;
            if (a.Count == 1) stop = ToLong(a[0]);
            else { start = ToLong(a[0]); stop = ToLong(a[1]); if (a.Count > 2) step = ToLong(a[2]); }
            if (step == 0) throw new ChatTemplateException("chat template: range() step must not be zero");
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        }),
        ["strftime_now"] = (JinjaCallable)((a, _) => StrFTime(DateTime.Now, a.Count > 0 ? Str(a[0]) : "%Y-%m-%d")),
    };

    private static long ToLong(object? v) => v is long l ? l : (long)AsDouble(v);

    private static string StrFTime(DateTime t, string fmt) => fmt
        .Replace("%Y", t.ToString("yyyy", CultureInfo.InvariantCulture)).Replace("%m", t.ToString("MM", CultureInfo.InvariantCulture))
        .Replace("%d", t.ToString("dd", CultureInfo.InvariantCulture)).Replace("%b", t.ToString("MMM", CultureInfo.InvariantCulture))
        .Replace("%B", t.ToString("MMMM", CultureInfo.InvariantCulture)).Replace("%H", t.ToString("HH", CultureInfo.InvariantCulture))
        .Replace("%M", t.ToString("mm", CultureInfo.InvariantCulture));

    public static object? GetAttr(object? target, string name)
    {
        if (target is IDictionary<string, object?> d)
        {
            if (d.TryGetValue(name, out var v)) return v;
            return DictMethod(d, name) ?? (object)Undefined.Instance;
        }
        if (target is string s) return StringMethod(s, name) ?? (object)Undefined.Instance;
        if (target is List<object?> l) return ListMethod(l, name) ?? (object)Undefined.Instance;
        return Undefined.Instance;
    }

    private static JinjaCallable? DictMethod(IDictionary<string, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
        "keys" => (_, _) => d.Keys.Select(k => (object?)k).ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "get" => (a, _) => a.Count > 0 && d.TryGetValue(Str(a[0]), out var v) ? v : a.Count > 1 ? a[1] : null,
        _ => MoreDictMethod(d, name),
    };

    private static JinjaCallable? StringMethod(string s, string name) => name switch
    {
        "strip" => (a, _) => a.Count > 0 ? s.Trim(Str(a[0]).ToCharArray()) : s.Trim(),
        "lstrip" => (a, _) => a.Count > 0 ? s.TrimStart(Str(a[0]).ToCharArray()) : s.TrimStart(),
        "rstrip" => (a, _) => a.Count > 0 ? s.TrimEnd(Str(a[0]).ToCharArray()) : s.TrimEnd(),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()),
        "capitalize" => (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
        _ => MoreStringMethod(s, name),
    };

    public static object? GetItem(object? target, object? index, int line)
    {
        switch (target)
        {
            case IDictionary<string, object?> d:
                return d.TryGetValue(Str(index), out var v) ? v : DictMethod(d, Str(index)) ?? (object)Undefined.Instance;
            case List<object?> l when index is long i:
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : Undefined.Instance;
            case string s when index is long j:
                if (j < 0) j += s.Length;
                return j >= 0 && j < s.Length ? s[(int)j].ToString() : Undefined.Instance;
            case string s when index is string m:
                return StringMethod(s, m) ?? (object)Undefined.Instance;
            case null or Undefined:
                return Undefined.Instance;
        }
        throw new ChatTemplateException($"chat template line {line}: cannot index {TypeName(target)} with {TypeName(index)}");
    }

    public static object? Slice(object? target, long? start, long? stop, long? step, int line)
    {
        long st = step ?? 1;
        if (st == 0) throw new ChatTemplateException($"chat template line {line}: slice step must not be zero");
        int n = target switch
        {
            List<object?> l => l.Count,
            string s => s.Length,
            _ => throw new ChatTemplateException($"chat template line {line}: cannot slice {TypeName(target)}"),
        };
        long Norm(long? v, long dflt)
        {
            if (v is null) return dflt;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Norm(start, st > 0 ? 0 : n - 1), b = Norm(stop, st > 0 ? n : -1);
        var idx = new List<int>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) idx.Add((int)i);
        return target is string str ? string.Concat(idx.Select(i => str[i])) : idx.Select(i => ((List<object?>)target)[i]).ToList();
    }

    public static object? Binary(string op, object? l, object? r, int line)
    {
        switch (op)
        {
            case "==": return Equal(l, r);
            case "!=": return !Equal(l, r);
            case "<": return Compare(l, r, line) < 0;
            case ">": return Compare(l, r, line) > 0;
            case "<=": return Compare(l, r, line) <= 0;
            case ">=": return Compare(l, r, line) >= 0;
            case "in": return Contains(r, l, line);
            case "not in": return !Contains(r, l, line);
            case "~": return Str(l) + Str(r);
            case "+":
                if (l is string ls && r is string rs) return ls + rs;
                if (l is List<object?> ll && r is List<object?> rl) return ll.Concat(rl).ToList();
                break;
            case "*" when l is string sl && r is long times: return string.Concat(Enumerable.Repeat(sl, (int)Math.Max(0, times)));
            case "%" when l is string fmt: return PercentFormat(fmt, r is List<object?> args ? args : [r], line);
        }
        if (!IsNumber(l) || !IsNumber(r))
            throw new ChatTemplateException($"chat template line {line}: unsupported operand types for {op}: {TypeName(l)} and {TypeName(r)}");
        if (l is long a && r is long b)
        {
            switch (op)
            {
                case "+": return a + b;
                case "-": return a - b;
                case "*": return a * b;
                case "//": return b == 0 ? throw DivZero(line) : (long)Math.Floor((double)a / b);
                case "%": return b == 0 ? throw DivZero(line) : ((a % b) + b) % b;
                case "**" when b >= 0: return (long)Math.Pow(a, b);
            }
        }
        double x = AsDouble(l), y = AsDouble(r);
        return op switch
        {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            "/" => y == 0 ? throw DivZero(line) : x / y,
            "//" => y == 0 ? throw DivZero(line) : Math.Floor(x / y),
            "%" => y == 0 ? throw DivZero(line) : x - y * Math.Floor(x / y),
            "**" => Math.Pow(x, y),
            _ => throw new ChatTemplateException($"chat template line {line}: unknown operator {op}"),
        };
    }

    private static ChatTemplateException DivZero(int line) => new($"chat template line {line}: division by zero");

    private static bool Contains(object? container, object? item, int line) => container switch
    {
        string s => s.Contains(Str(item), StringComparison.Ordinal),
        List<object?> l => l.Any(x => Equal(x, item)),
        IDictionary<string, object?> d => item is string k && d.ContainsKey(k),
        null or Undefined => false,
        _ => throw new ChatTemplateException($"chat template line {line}: 'in' needs a string, list or mapping, got {TypeName(container)}"),
    };

    private static string PercentFormat(string fmt, List<object?> args, int line)
    {
        int k = 0;
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            if (c == '%') { sb.Append('%'); continue; }
            if (k >= args.Count) throw new ChatTemplateException($"chat template line {line}: not enough arguments for format string");
            sb.Append(c == 'r' ? Repr(args[k++]) : Str(args[k++]));
        }
        return sb.ToString();
    }

    public static bool Test(string name, object? v, List<object?> args, int line) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "mapping" => v is IDictionary<string, object?>,
        "sequence" or "iterable" => v is List<object?> or string or IDictionary<string, object?>,
        "callable" => v is JinjaCallable,
        "equalto" or "eq" or "sameas" => Equal(v, args.Count > 0 ? args[0] : null),
        "ne" => !Equal(v, args.Count > 0 ? args[0] : null),
        "odd" => v is long o && o % 2 != 0,
        "even" => v is long e && e % 2 == 0,
        "divisibleby" => v is long d && args.Count > 0 && args[0] is long q && q != 0 && d % q == 0,
        "in" => args.Count > 0 && Contains(args[0], v, line),
        "lower" => v is string ls && ls == ls.ToLowerInvariant(),
        "upper" => v is string us && us == us.ToUpperInvariant(),
        _ => throw new ChatTemplateException($"chat template line {line}: unknown test '{name}'"),
    };

    public static object? Filter(string name, object? v, List<object?> a, Dictionary<string, object?> kw, int line)
    {
        switch (name)
        {
            case "trim": return a.Count > 0 ? Str(v).Trim(Str(a[0]).ToCharArray()) : Str(v).Trim();
            case "length" or "count":
                return v switch
                {
                    string s => (long)s.Length,
                    List<object?> l => (long)l.Count,
                    IDictionary<string, object?> d => (long)d.Count,
                    Undefined or null => 0L,
                    _ => throw new ChatTemplateException($"chat template line {line}: {TypeName(v)} has no length"),
                };
            case "tojson": return ToJsonFilter(v, a, kw, line);
            case "string": return Str(v);
            case "list": return Iterate(v, line).ToList();
            case "first": return Iterate(v, line) is { Count: > 0 } f ? f[0] : Undefined.Instance;
            case "last": return Iterate(v, line) is { Count: > 0 } g ? g[^1] : Undefined.Instance;
            case "upper": return Str(v).ToUpperInvariant();
            case "lower": return Str(v).ToLowerInvariant();
            case "capitalize": return StringMethod(Str(v), "capitalize")!([], []);
            case "title": return StringMethod(Str(v), "title")!([], []);
            case "replace": return Str(v).Replace(Str(a[0]), Str(a[1]), StringComparison.Ordinal);
            case "join": return string.Join(a.Count > 0 ? Str(a[0]) : "", Iterate(v, line).Select(Str));
            case "default" or "d":
            {
                bool boolean = a.Count > 1 && Truthy(a[1]);
                object? dflt = a.Count > 0 ? a[0] : kw.GetValueOrDefault("default_value", "");
                return v is Undefined || (boolean && !Truthy(v)) ? dflt : v;
            }
            case "int": return v is string si ? (long.TryParse(si.Trim(), CultureInfo.InvariantCulture, out long p) ? p : 0L) : v is double dv ? (long)dv : v is long lv ? lv : 0L;
            case "float": return v is string sf ? (double.TryParse(sf.Trim(), CultureInfo.InvariantCulture, out double q) ? q : 0.0) : IsNumber(v) ? AsDouble(v) : 0.0;
            case "abs": return v is long la ? (object)Math.Abs(la) : Math.Abs(AsDouble(v));
            case "safe" or "escape" or "e": return v;
            case "dictsort":
                return v is IDictionary<string, object?> ds
                    ? ds.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : throw new ChatTemplateException($"chat template line {line}: dictsort needs a mapping, got {TypeName(v)}");
            case "items": return v is IDictionary<string, object?> di ? DictMethod(di, "items")!([], []) : Undefined.Instance;
            case "reverse": return v is string rs ? new string(rs.Reverse().ToArray()) : Iterate(v, line).AsEnumerable().Reverse().ToList();
            case "unique": return Iterate(v, line).Aggregate(new List<object?>(), (acc, x) => { if (!acc.Any(y => Equal(x, y))) acc.Add(x); return acc; });
            case "selectattr" or "rejectattr":
            {
                bool select = name == "selectattr";
                string attr = Str(a[0]);
                string? test = a.Count > 1 ? Str(a[1]) : null;
                var targs = a.Skip(2).ToList();
                return Iterate(v, line).Where(x =>
                {
                    var av = GetAttr(x, attr);
                    bool ok = test is null ? Truthy(av) : Test(test, av, targs, line);
                    return ok == select;
                }).ToList();
            }
            case "select" or "reject":
            {
                bool select = name == "select";
                string? test = a.Count > 0 ? Str(a[0]) : null;
                var targs = a.Skip(1).ToList();
                return Iterate(v, line).Where(x => (test is null ? Truthy(x) : Test(test, x, targs, line)) == select).ToList();
            }
            case "map":
                if (kw.TryGetValue("attribute", out var at))
                    return Iterate(v, line).Select(x => GetAttr(x, Str(at)) is var r && r is Undefined && kw.TryGetValue("default", out var md) ? md : GetAttr(x, Str(at))).ToList();
                if (a.Count > 0) return Iterate(v, line).Select(x => Filter(Str(a[0]), x, a.Skip(1).ToList(), [], line)).ToList();
                throw new ChatTemplateException($"chat template line {line}: map needs attribute= or a filter name");
        }
        if (TryMoreFilter(name, v, a, kw, line, out var result)) return result;
        throw new ChatTemplateException($"chat template line {line}: unknown filter '{name}'");
    }
}
