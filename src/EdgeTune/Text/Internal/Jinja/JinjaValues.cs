using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace EdgeTune.Text.Internal.Jinja;

/// <summary>The value of a missing variable or attribute: falsy, prints as "", fails "is defined".</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();
    private Undefined() { }
    public override string ToString() => "";
}

/// <summary>A namespace() object: attributes can be assigned from inside loops.</summary>
internal sealed class JinjaNamespace : Dictionary<string, object?>
{
    public JinjaNamespace() : base(StringComparer.Ordinal) { }
}

/// <summary>A callable: positional and keyword arguments.</summary>
internal delegate object? JinjaCallable(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>
/// Value model: null (none), <see cref="Undefined"/>, string, long, double, bool,
/// List&lt;object?&gt;, Dictionary&lt;string, object?&gt; (insertion-ordered), <see cref="JinjaCallable"/>.
/// Conversions follow Python's rules where chat templates can observe them (str(), truthiness, ==, json.dumps).
/// </summary>
internal static class JinjaValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>Python str().</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        _ => Repr(v),
    };

    /// <summary>Python repr() (what str() of a list or dict shows for its items).</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case string s:
                char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
                var sb = new StringBuilder().Append(q);
                foreach (char c in s)
                {
                    if (c == q || c == '\\') sb.Append('\\').Append(c);
                    else if (c == '\n') sb.Append("\\n");
                    else if (c == '\t') sb.Append("\\t");
                    else if (c == '\r') sb.Append("\\r");
                    else sb.Append(c);
                }
                return sb.Append(q).ToString();
            case IDictionary<string, object?> d:
                return "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case List<object?> l:
                return "[" + string.Join(", ", l.Select(Repr)) + "]";
            case JinjaCallable:
                return "<function>";
            default:
                return Str(v);
        }
    }

    private static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        return r.Contains('.') || r.Contains('E') ? r.Replace("E", "e") : r + ".0";
    }

    public static bool IsNumber(object? v) => v is long or double;

    public static double AsDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new ChatTemplateException($"chat template: expected a number, got {TypeName(v)}"),
    };

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined => "undefined",
        string => "string",
        bool => "boolean",
        long => "integer",
        double => "float",
        IDictionary<string, object?> => "mapping",
        List<object?> => "list",
        _ => v.GetType().Name,
    };

    /// <summary>Python ==.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (a is bool ba && b is bool bb) return ba == bb;
        if (IsNumber(a) && IsNumber(b)) return AsDouble(a) == AsDouble(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is List<object?> la && b is List<object?> lb)
            return la.Count == lb.Count && la.Zip(lb).All(p => Equal(p.First, p.Second));
        if (a is IDictionary<string, object?> da && b is IDictionary<string, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var o) && Equal(kv.Value, o));
        return ReferenceEquals(a, b);
    }

    public static int Compare(object? a, object? b, int line)
    {
        if (IsNumber(a) && IsNumber(b)) return AsDouble(a).CompareTo(AsDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        throw new ChatTemplateException($"chat template line {line}: cannot compare {TypeName(a)} with {TypeName(b)}");
    }

    /// <summary>Iterates a list, the keys of a mapping, or the characters of a string.</summary>
    public static List<object?> Iterate(object? v, int line) => v switch
    {
        List<object?> l => l,
        IDictionary<string, object?> d => d.Keys.Select(k => (object?)k).ToList(),
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        null or Undefined => [],
        _ => throw new ChatTemplateException($"chat template line {line}: {TypeName(v)} is not iterable"),
    };

    /// <summary>json.dumps(v, ensure_ascii=False) with Python's default separators (", " and ": "), or with indent.</summary>
    public static string ToJson(object? v, int? indent)
    {
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth)
    {
        switch (v)
        {
            case null or Undefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case string s: WriteJsonString(sb, s); break;
            case IDictionary<string, object?> dict:
                WriteContainer(sb, '{', '}', dict.ToList(), indent, depth, (kv, dd) =>
                {
                    WriteJsonString(sb, kv.Key);
                    sb.Append(": ");
                    WriteJson(sb, kv.Value, indent, dd);
                });
                break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list, indent, depth, (item, dd) => WriteJson(sb, item, indent, dd));
                break;
            default: throw new ChatTemplateException($"chat template: tojson cannot serialize {TypeName(v)}");
        }
    }

    private static void WriteContainer<T>(StringBuilder sb, char open, char close, List<T> items, int? indent, int depth, Action<T, int> write)
    {
        sb.Append(open);
        if (items.Count == 0) { sb.Append(close); return; }
        for (int i = 0; i < items.Count; i++)
        {
            if (indent is int n) sb.Append('\n').Append(' ', n * (depth + 1));
            else if (i > 0) sb.Append(' ');
            write(items[i], depth + 1);
            if (i + 1 < items.Count) sb.Append(',');
        }
        if (indent is int m) sb.Append('\n').Append(' ', m * depth);
        sb.Append(close);
    }

    private static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Converts a System.Text.Json element (e.g. tool definitions) into template values.</summary>
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (d, p) => { d[p.Name] = FromJson(p.Value); return d; }),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Converts CLR values handed in by callers (numbers of any type, arrays, dictionaries, JsonElement).</summary>
    public static object? FromClr(object? v) => v switch
    {
        null or string or bool or long or double or Undefined or JinjaCallable => v,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        JsonElement je => FromJson(je),
        ChatMessage msg => msg.ToTemplateValue(),
        IDictionary<string, object?> d => d.ToDictionary(kv => kv.Key, kv => FromClr(kv.Value), StringComparer.Ordinal),
        IEnumerable<KeyValuePair<string, object?>> kvs => kvs.ToDictionary(kv => kv.Key, kv => FromClr(kv.Value), StringComparer.Ordinal),
        IEnumerable seq => seq.Cast<object?>().Select(FromClr).ToList(),
        _ => Str(v.ToString()),
    };
}
