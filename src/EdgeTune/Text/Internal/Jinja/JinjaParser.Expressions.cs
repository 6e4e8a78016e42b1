namespace EdgeTune.Text.Internal.Jinja;

/// <summary>Expression part of the parser. Precedence, lowest first: "a if c else b", or, and, not,
/// comparisons (== != &lt; &gt; &lt;= &gt;= in, not in), ~, + -, * / // %, **, unary -, then primary with
/// postfix (.attr, [index], [a:b:c], call) and filters/tests (| f, is t), which bind tightest.</summary>
internal sealed partial class JinjaParser
{
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
            if (IsOp("*") || IsOp("**")) throw Error("unsupported construct: *args/**kwargs in a call");
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
