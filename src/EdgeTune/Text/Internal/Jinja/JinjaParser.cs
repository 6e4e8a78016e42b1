namespace EdgeTune.Text.Internal.Jinja;

/// <summary>
/// Parses the Jinja subset used by chat templates: if/elif/else, for (tuple targets, "if" filter, else),
/// set (plain, namespace attribute, block), macro, break/continue, generation blocks (rendered as plain
/// bodies), and expressions with Jinja's precedence (filters and tests bind tighter than arithmetic).
/// </summary>
internal sealed partial class JinjaParser
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
                _ => throw Error($"unsupported statement '{kw}' (supported: if, for, set, macro, break, continue, generation)"),
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
        if (IsOp(",")) throw Error("unsupported construct: tuple unpacking in 'set'");
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
}
