namespace EdgeTune.Text.Internal.Jinja;

/// <summary>
/// Parses the Jinja subset used by chat templates: if/elif/else, for (tuple targets, "if" filter, else),
/// set (plain, namespace attribute, block), macro, break/continue, generation blocks (rendered as plain
/// bodies), and expressions with Jinja's precedence (filters and tests bind tighter than arithmetic).
/// </summary>
internal sealed class JinjaParser
{
    private readonly List<Segment> _segments;
    private int _seg;
    private List<Tok> _toks = [];
    private int _pos;

    private JinjaParser(List<Segment> segments) => _segments = segments;

    public static List<Node> Parse(string template)
    {
        var p = new JinjaParser(JinjaLexer.Split(template));
        var body = p.ParseBody(out string? end);
        if (end is not null) throw new ChatTemplateException($"chat template line {p.CurrentLine}: unexpected '{{% {end} %}}'");
        return body;
    }

    private int CurrentLine => _seg < _segments.Count ? _segments[_seg].Line : (_segments.Count > 0 ? _segments[^1].Line : 1);

    /// <summary>Parses nodes until a block tag that this level does not own (endif, else, ...), returned in <paramref name="stop"/>.</summary>
    private List<Node> ParseBody(out string? stop)
    {
        var nodes = new List<Node>();
        while (_seg < _segments.Count)
        {
            var s = _segments[_seg];
            if (s.Kind == SegmentKind.Text) { nodes.Add(new TextNode(s.Content, s.Line)); _seg++; continue; }
            _toks = JinjaLexer.Tokenize(s.Content, s.Line);
            _pos = 0;
            if (s.Kind == SegmentKind.Output)
            {
                _seg++;
                var e = ParseExpr();
                ExpectEnd();
                nodes.Add(new OutputNode(e, s.Line));
                continue;
            }
            string kw = Peek.Kind == TokKind.Name ? Peek.Text : throw Error("expected a statement name");
            switch (kw)
            {
                case "endif" or "endfor" or "else" or "elif" or "endset" or "endmacro" or "endgeneration":
                    stop = kw;
                    return nodes;
            }
            _seg++;
            _pos++;
            nodes.Add(kw switch
            {
                "if" => ParseIf(s.Line),
                "for" => ParseFor(s.Line),
                "set" => ParseSet(s.Line),
                "macro" => ParseMacro(s.Line),
                "break" => EndThen(new BreakNode(s.Line)),
                "continue" => EndThen(new ContinueNode(s.Line)),
                "generation" => ParseGeneration(s.Line),
                _ => throw Error($"unsupported statement '{kw}'"),
            });
        }
        stop = null;
        return nodes;
    }

    private Node EndThen(Node n) { ExpectEnd(); return n; }

    /// <summary>After ParseBody stopped on a tag: consume it, leaving its tokens after the keyword.</summary>
    private void ConsumeStop()
    {
        _toks = JinjaLexer.Tokenize(_segments[_seg].Content, _segments[_seg].Line);
        _pos = 1;
        _seg++;
    }

    private List<Node> Body(string owner, int line, params string[] allowed)
    {
        var body = ParseBody(out string? stop);
        if (stop is null || !allowed.Contains(stop)) throw new ChatTemplateException($"chat template line {line}: '{owner}' is not closed (expected {string.Join(" or ", allowed)}, got {stop ?? "end of template"})");
        return body;
    }

    private string LastStop => JinjaLexer.Tokenize(_segments[_seg].Content, _segments[_seg].Line)[0].Text;

    private Node ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        var cond = ParseExpr();
        ExpectEnd();
        while (true)
        {
            var body = Body("if", line, "elif", "else", "endif");
            string stop = LastStop;
            branches.Add((cond, body));
            ConsumeStop();
            if (stop == "elif") { cond = ParseExpr(); ExpectEnd(); continue; }
            if (stop == "else")
            {
                ExpectEnd();
                var elseBody = Body("if", line, "endif");
                ConsumeStop();
                ExpectEnd();
                return new IfNode(branches, elseBody, line);
            }
            ExpectEnd();
            return new IfNode(branches, null, line);
        }
    }

    private Node ParseFor(int line)
    {
        var targets = new List<string> { ExpectName() };
        while (AcceptOp(",")) targets.Add(ExpectName());
        if (!AcceptName("in")) throw Error("expected 'in' in for loop");
        var iter = ParseOr(); // no conditional expression here: "if" starts the loop filter
        Expr? filter = AcceptName("if") ? ParseExpr() : null;
        ExpectEnd();
        var body = Body("for", line, "else", "endfor");
        string stop = LastStop;
        ConsumeStop();
        ExpectEnd();
        List<Node>? elseBody = null;
        if (stop == "else")
        {
            elseBody = Body("for", line, "endfor");
            ConsumeStop();
            ExpectEnd();
        }
        return new ForNode(targets, iter, filter, body, elseBody, line);
    }

    private Node ParseSet(int line)
    {
        string name = ExpectName();
        string? attr = AcceptOp(".") ? ExpectName() : null;
        if (AcceptOp("="))
        {
            var value = ParseExpr();
            ExpectEnd();
            return new SetNode(name, attr, value, null, line);
        }
        ExpectEnd();
        var body = Body("set", line, "endset");
        ConsumeStop();
        ExpectEnd();
        return new SetNode(name, attr, null, body, line);
    }

    private Node ParseMacro(int line)
    {
        string name = ExpectName();
        ExpectOp("(");
        var ps = new List<(string, Expr?)>();
        if (!AcceptOp(")"))
        {
            do
            {
                string p = ExpectName();
                ps.Add((p, AcceptOp("=") ? ParseExpr() : null));
            } while (AcceptOp(","));
            ExpectOp(")");
        }
        ExpectEnd();
        var body = Body("macro", line, "endmacro");
        ConsumeStop();
        ExpectEnd();
        return new MacroNode(name, ps, body, line);
    }

    private Node ParseGeneration(int line)
    {
        ExpectEnd();
        var body = Body("generation", line, "endgeneration");
        ConsumeStop();
        ExpectEnd();
        return new IfNode([(new LiteralExpr(true, line), body)], null, line);
    }

    // ---- expressions ----
    private Tok Peek => _toks[_pos];
    private Tok Next() => _toks[_pos++];
    private bool IsOp(string op) => Peek.Kind == TokKind.Op && Peek.Text == op;
    private bool IsName(string n) => Peek.Kind == TokKind.Name && Peek.Text == n;
    private bool AcceptOp(string op) { if (!IsOp(op)) return false; _pos++; return true; }
    private bool AcceptName(string n) { if (!IsName(n)) return false; _pos++; return true; }
    private void ExpectOp(string op) { if (!AcceptOp(op)) throw Error($"expected '{op}'"); }
    private string ExpectName() => Peek.Kind == TokKind.Name ? Next().Text : throw Error("expected a name");
    private void ExpectEnd() { if (Peek.Kind != TokKind.End) throw Error($"unexpected '{Peek.Text}'"); }
    private ChatTemplateException Error(string what) => new($"chat template line {Peek.Line}: {what} (near '{Peek.Text}')");

    public Expr ParseExpr()
    {
        var e = ParseOr();
        if (AcceptName("if"))
        {
            var test = ParseOr();
            Expr? otherwise = AcceptName("else") ? ParseExpr() : null;
            return new CondExpr(test, e, otherwise, e.Line);
        }
        return e;
    }

    private Expr ParseOr()
    {
        var l = ParseAnd();
        while (AcceptName("or")) l = new BinaryExpr("or", l, ParseAnd(), l.Line);
        return l;
    }

    private Expr ParseAnd()
    {
        var l = ParseNot();
        while (AcceptName("and")) l = new BinaryExpr("and", l, ParseNot(), l.Line);
        return l;
    }

    private Expr ParseNot() => IsName("not") ? new UnaryExpr("not", (Next(), ParseNot()).Item2, Peek.Line) : ParseCompare();

    private Expr ParseCompare()
    {
        var l = ParseConcat();
        while (true)
        {
            if (Peek.Kind == TokKind.Op && Peek.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
                l = new BinaryExpr(Next().Text, l, ParseConcat(), l.Line);
            else if (AcceptName("in")) l = new BinaryExpr("in", l, ParseConcat(), l.Line);
            else if (IsName("not") && _toks[_pos + 1].Kind == TokKind.Name && _toks[_pos + 1].Text == "in")
            {
                _pos += 2;
                l = new BinaryExpr("not in", l, ParseConcat(), l.Line);
            }
            else return l;
        }
    }

    private Expr ParseConcat()
    {
        var l = ParseAdd();
        while (AcceptOp("~")) l = new BinaryExpr("~", l, ParseAdd(), l.Line);
        return l;
    }

    private Expr ParseAdd()
    {
        var l = ParseMul();
        while (Peek.Kind == TokKind.Op && Peek.Text is "+" or "-") l = new BinaryExpr(Next().Text, l, ParseMul(), l.Line);
        return l;
    }

    private Expr ParseMul()
    {
        var l = ParsePow();
        while (Peek.Kind == TokKind.Op && Peek.Text is "*" or "/" or "//" or "%") l = new BinaryExpr(Next().Text, l, ParsePow(), l.Line);
        return l;
    }

    private Expr ParsePow()
    {
        var l = ParseUnary();
        while (AcceptOp("**")) l = new BinaryExpr("**", l, ParseUnary(), l.Line);
        return l;
    }

    private Expr ParseUnary()
    {
        if (Peek.Kind == TokKind.Op && Peek.Text is "-" or "+")
        {
            string op = Next().Text;
            return new UnaryExpr(op, ParseUnary(), Peek.Line);
        }
        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokKind.String:
                string s = (string)t.Value!;
                while (Peek.Kind == TokKind.String) s += (string)Next().Value!; // adjacent literals concatenate
                return new LiteralExpr(s, t.Line);
            case TokKind.Int:
            case TokKind.Float:
                return new LiteralExpr(t.Value, t.Line);
            case TokKind.Name:
                return t.Text switch
                {
                    "true" or "True" => new LiteralExpr(true, t.Line),
                    "false" or "False" => new LiteralExpr(false, t.Line),
                    "none" or "None" => new LiteralExpr(null, t.Line),
                    _ => new NameExpr(t.Text, t.Line),
                };
            case TokKind.Op when t.Text == "(":
            {
                if (AcceptOp(")")) return new ListExpr([], t.Line);
                var e = ParseExpr();
                if (!IsOp(",")) { ExpectOp(")"); return e; }
                var items = new List<Expr> { e };
                while (AcceptOp(",") && !IsOp(")")) items.Add(ParseExpr());
                ExpectOp(")");
                return new ListExpr(items, t.Line);
            }
            case TokKind.Op when t.Text == "[":
            {
                var items = new List<Expr>();
                while (!AcceptOp("]"))
                {
                    items.Add(ParseExpr());
                    if (!AcceptOp(",")) { ExpectOp("]"); break; }
                }
                return new ListExpr(items, t.Line);
            }
            case TokKind.Op when t.Text == "{":
            {
                var pairs = new List<(Expr, Expr)>();
                while (!AcceptOp("}"))
                {
                    var k = ParseExpr();
                    ExpectOp(":");
                    pairs.Add((k, ParseExpr()));
                    if (!AcceptOp(",")) { ExpectOp("}"); break; }
                }
                return new DictExpr(pairs, t.Line);
            }
        }
        _pos--;
        throw Error("expected an expression");
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            if (AcceptOp(".")) e = new AttrExpr(e, Peek.Kind == TokKind.Int ? Next().Text : ExpectName(), e.Line);
            else if (AcceptOp("["))
            {
                Expr? start = IsOp(":") ? null : ParseExpr();
                if (AcceptOp(":"))
                {
                    Expr? stop = IsOp("]") || IsOp(":") ? null : ParseExpr();
                    Expr? step = AcceptOp(":") && !IsOp("]") ? ParseExpr() : null;
                    ExpectOp("]");
                    e = new SliceExpr(e, start, stop, step, e.Line);
                }
                else
                {
                    ExpectOp("]");
                    e = new ItemExpr(e, start!, e.Line);
                }
            }
            else if (IsOp("("))
            {
                var (args, kwargs) = ParseArgs();
                e = new CallExpr(e, args, kwargs, e.Line);
            }
            else return e;
        }
    }

    private (List<Expr>, List<(string, Expr)>) ParseArgs()
    {
        ExpectOp("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!AcceptOp(")"))
        {
            if (Peek.Kind == TokKind.Name && _toks[_pos + 1].Kind == TokKind.Op && _toks[_pos + 1].Text == "=")
            {
                string n = Next().Text;
                _pos++;
                kwargs.Add((n, ParseExpr()));
            }
            else args.Add(ParseExpr());
            if (!AcceptOp(",")) { ExpectOp(")"); break; }
        }
        return (args, kwargs);
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            if (AcceptOp("|"))
            {
                string name = ExpectName();
                var (args, kwargs) = IsOp("(") ? ParseArgs() : ([], []);
                e = new FilterExpr(e, name, args, kwargs, e.Line);
            }
            else if (AcceptName("is"))
            {
                bool neg = AcceptName("not");
                string name = Peek.Kind == TokKind.Name ? Next().Text : throw Error("expected a test name after 'is'");
                if (name is "none" or "true" or "false") { } // names that are also literals
                var args = new List<Expr>();
                if (IsOp("(")) args = ParseArgs().Item1;
                else if (Peek.Kind is TokKind.String or TokKind.Int or TokKind.Float) args.Add(ParsePrimary());
                e = new TestExpr(e, name, args, neg, e.Line);
            }
            else return e;
        }
    }
}
