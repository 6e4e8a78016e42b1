using System.Text;
using static EdgeTune.Text.Internal.Jinja.JinjaValues;

namespace EdgeTune.Text.Internal.Jinja;

/// <summary>
/// Renders a parsed template. Scopes follow Jinja: a for-loop body has its own scope (a "set" inside it is
/// not seen after the loop, which is why templates use namespace()), if-blocks do not.
/// </summary>
internal sealed class JinjaInterpreter
{
    private enum Flow { Normal, Break, Continue }

    private sealed class Scope(Scope? parent)
    {
        public readonly Dictionary<string, object?> Vars = new(StringComparer.Ordinal);
        public readonly Scope? Parent = parent;

        public bool TryGet(string name, out object? value)
        {
            for (var s = this; s is not null; s = s.Parent)
                if (s.Vars.TryGetValue(name, out value)) return true;
            value = null;
            return false;
        }
    }

    private Scope _scope;
    private readonly StringBuilder _out = new();

    public JinjaInterpreter(Dictionary<string, object?> globals)
    {
        _scope = new Scope(null);
        foreach (var (k, v) in JinjaBuiltins.Globals()) _scope.Vars[k] = v;
        foreach (var (k, v) in globals) _scope.Vars[k] = v;
    }

    public string Render(List<Node> nodes)
    {
        _scope = new Scope(_scope);
        Exec(nodes);
        return _out.ToString();
    }

    private Flow Exec(List<Node> nodes)
    {
        foreach (var n in nodes)
        {
            var f = Exec(n);
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }

    private Flow Exec(Node node)
    {
        switch (node)
        {
            case TextNode t: _out.Append(t.Text); return Flow.Normal;
            case OutputNode o: _out.Append(Str(Eval(o.Value))); return Flow.Normal;
            case IfNode i:
                foreach (var (cond, body) in i.Branches)
                    if (Truthy(Eval(cond))) return Exec(body);
                return i.Else is null ? Flow.Normal : Exec(i.Else);
            case ForNode f: return ExecFor(f);
            case SetNode s: ExecSet(s); return Flow.Normal;
            case MacroNode m: _scope.Vars[m.Name] = MakeMacro(m); return Flow.Normal;
            case BreakNode: return Flow.Break;
            case ContinueNode: return Flow.Continue;
            default: throw new ChatTemplateException($"chat template line {node.Line}: unknown node {node.GetType().Name}");
        }
    }

    private Flow ExecFor(ForNode f)
    {
        var items = Iterate(Eval(f.Iter), f.Line);
        var outer = _scope;
        _scope = new Scope(outer);
        try
        {
            if (f.Filter is not null)
            {
                var kept = new List<object?>();
                foreach (var item in items)
                {
                    Bind(f.Targets, item, f.Line);
                    if (Truthy(Eval(f.Filter))) kept.Add(item);
                }
                items = kept;
            }
            if (items.Count == 0)
            {
                _scope = outer;
                return f.Else is null ? Flow.Normal : Exec(f.Else);
            }
            for (int i = 0; i < items.Count; i++)
            {
                var body = new Scope(outer);
                _scope = body;
                Bind(f.Targets, items[i], f.Line);
                body.Vars["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["index"] = (long)(i + 1), ["index0"] = (long)i,
                    ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                    ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
                    ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                    ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Instance,
                    ["depth"] = 1L, ["depth0"] = 0L,
                    ["cycle"] = LoopCycle(i, f.Line),
                };
                if (Exec(f.Body) == Flow.Break) break;
            }
            return Flow.Normal;
        }
        finally { _scope = outer; }
    }

    private static JinjaCallable LoopCycle(int index, int line) => (args, _) =>
        args.Count > 0 ? args[index % args.Count] : throw new ChatTemplateException($"chat template line {line}: loop.cycle() needs at least one value");

    private void Bind(List<string> targets, object? item, int line)
    {
        if (targets.Count == 1) { _scope.Vars[targets[0]] = item; return; }
        if (item is not List<object?> tuple || tuple.Count != targets.Count)
            throw new ChatTemplateException($"chat template line {line}: cannot unpack {TypeName(item)} into {targets.Count} loop variables");
        for (int i = 0; i < targets.Count; i++) _scope.Vars[targets[i]] = tuple[i];
    }

    private void ExecSet(SetNode s)
    {
        object? value;
        if (s.Value is not null) value = Eval(s.Value);
        else
        {
            int mark = _out.Length;
            Exec(s.Body!);
            value = _out.ToString(mark, _out.Length - mark);
            _out.Length = mark;
        }
        if (s.Attr is null) { _scope.Vars[s.Name] = value; return; }
        if (!_scope.TryGet(s.Name, out var target) || target is not JinjaNamespace ns)
            throw new ChatTemplateException($"chat template line {s.Line}: cannot set attribute '{s.Attr}' on '{s.Name}' (not a namespace)");
        ns[s.Attr] = value;
    }

    private JinjaCallable MakeMacro(MacroNode m) => (args, kwargs) =>
    {
        var saved = _scope;
        int mark = _out.Length;
        _scope = new Scope(saved);
        try
        {
            for (int i = 0; i < m.Params.Count; i++)
            {
                var (name, dflt) = m.Params[i];
                _scope.Vars[name] = i < args.Count ? args[i] : kwargs.TryGetValue(name, out var kv) ? kv : dflt is null ? Undefined.Instance : Eval(dflt);
            }
            Exec(m.Body);
            string text = _out.ToString(mark, _out.Length - mark);
            _out.Length = mark;
            return text;
        }
        finally { _scope = saved; }
    };

    public object? Eval(Expr e)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return _scope.TryGet(n.Name, out var v) ? v : Undefined.Instance;
            case AttrExpr a: return JinjaBuiltins.GetAttr(Eval(a.Target), a.Name);
            case ItemExpr i: return JinjaBuiltins.GetItem(Eval(i.Target), Eval(i.Index), i.Line);
            case SliceExpr s:
                return JinjaBuiltins.Slice(Eval(s.Target), OptInt(s.Start), OptInt(s.Stop), OptInt(s.Step), s.Line);
            case CallExpr c:
            {
                var callee = Eval(c.Callee);
                if (callee is not JinjaCallable fn)
                {
                    if (callee is Undefined && c.Callee is AttrExpr method)
                        throw new ChatTemplateException($"chat template line {c.Line}: {TypeName(Eval(method.Target))} has no method '{method.Name}' (unknown, or not supported by this Jinja interpreter)");
                    if (callee is Undefined && c.Callee is NameExpr fnName)
                        throw new ChatTemplateException($"chat template line {c.Line}: unknown function '{fnName.Name}'");
                    throw new ChatTemplateException($"chat template line {c.Line}: {Describe(c.Callee)} is not callable ({TypeName(callee)})");
                }
                return fn(c.Args.Select(Eval).ToList(), c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)));
            }
            case FilterExpr f:
                return JinjaBuiltins.Filter(f.Name, Eval(f.Target), f.Args.Select(Eval).ToList(),
                    f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)), f.Line);
            case TestExpr t:
            {
                bool r = JinjaBuiltins.Test(t.Name, Eval(t.Target), t.Args.Select(Eval).ToList(), t.Line);
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var x = Eval(u.Operand);
                return u.Op switch
                {
                    "not" => !Truthy(x),
                    "-" => x is long l ? (object)(-l) : -AsDouble(x),
                    _ => x,
                };
            }
            case BinaryExpr b:
                if (b.Op == "and") { var l = Eval(b.Left); return Truthy(l) ? Eval(b.Right) : l; }
                if (b.Op == "or") { var l = Eval(b.Left); return Truthy(l) ? l : Eval(b.Right); }
                return JinjaBuiltins.Binary(b.Op, Eval(b.Left), Eval(b.Right), b.Line);
            case CondExpr c:
                return Truthy(Eval(c.Test)) ? Eval(c.Then) : c.Else is null ? Undefined.Instance : Eval(c.Else);
            case ListExpr l: return l.Items.Select(Eval).ToList();
            case DictExpr d:
            {
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, val) in d.Pairs) dict[Str(Eval(k))] = Eval(val);
                return dict;
            }
        }
        throw new ChatTemplateException($"chat template line {e.Line}: unknown expression {e.GetType().Name}");
    }

    private long? OptInt(Expr? e) => e is null ? null : Eval(e) switch
    {
        long l => l,
        null => null,
        var o => throw new ChatTemplateException($"chat template line {e.Line}: slice bounds must be integers, got {TypeName(o)}"),
    };

    private static string Describe(Expr e) => e switch
    {
        NameExpr n => $"'{n.Name}'",
        AttrExpr a => $"'{a.Name}'",
        _ => "expression",
    };
}
