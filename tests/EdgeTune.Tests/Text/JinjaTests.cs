using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>The Jinja subset on its own (expected outputs as Jinja2 with trim_blocks/lstrip_blocks gives them).</summary>
public class JinjaTests
{
    private static string R(string src, IReadOnlyDictionary<string, object?>? vars = null, params ChatMessage[] msgs) =>
        new ChatTemplate(src, "<s>", "</s>").Render(msgs, false, vars);

    private static Dictionary<string, object?> V(params (string, object?)[] kv) => kv.ToDictionary(p => p.Item1, p => p.Item2);

    [Fact]
    public void WhitespaceControl_TrimAndLstripBlocks()
    {
        Assert.Equal("a\nb", R("a\n  {% if true %}\nb{% endif %}"));
        Assert.Equal("ab", R("a  {%- if true -%}  \n b{% endif %}"));
        Assert.Equal("x\n", R("{{ 'x' }}\n"));
        Assert.Equal("ab", R("a{# note #}b"));
        Assert.Equal("  y", R("  {%+ if true %}y{% endif %}"));
    }

    [Fact]
    public void Loop_Variables_Filter_Else_BreakContinue()
    {
        Assert.Equal("1/3F 2/3 3/3L", R("{% for x in [1,2,3] %}{{ loop.index }}/{{ loop.length }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{% if not loop.last %} {% endif %}{% endfor %}"));
        Assert.Equal("2;4;", R("{% for x in range(1, 6) if x % 2 == 0 %}{{ x }};{% endfor %}"));
        Assert.Equal("empty", R("{% for x in [] %}{{ x }}{% else %}empty{% endfor %}"));
        Assert.Equal("13", R("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"));
        Assert.Equal("a=1,b=2", R("{% for k, v in d.items() %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}", V(("d", new Dictionary<string, object?> { ["a"] = 1, ["b"] = 2 }))));
    }

    [Fact]
    public void Scoping_SetInLoopDoesNotLeak_NamespaceDoes()
    {
        Assert.Equal("0", R("{% set n = 0 %}{% for x in [1,2] %}{% set n = n + x %}{% endfor %}{{ n }}"));
        Assert.Equal("3", R("{% set ns = namespace(n=0) %}{% for x in [1,2] %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}"));
        Assert.Equal("yes", R("{% if true %}{% set a = 'yes' %}{% endif %}{{ a }}"));
    }

    [Fact]
    public void Expressions_Precedence_Slicing_Concat()
    {
        Assert.Equal("7", R("{{ 1 + 2 * 3 }}"));
        Assert.Equal("True", R("{{ 'a' ~ 1 == 'a1' }}"));
        Assert.Equal("ab1", R("{{ 'ab' ~ 'c' | length }}")); // filters bind tighter than ~
        Assert.Equal("bc|c|ab|cba", R("{{ s[1:] }}|{{ s[-1] }}|{{ s[:-1] }}|{{ s[::-1] }}", V(("s", "abc"))));
        Assert.Equal("[2, 3]", R("{{ xs[1:] }}", V(("xs", new[] { 1, 2, 3 }))));
        Assert.Equal("yes", R("{{ 'yes' if 2 > 1 and not false else 'no' }}"));
        Assert.Equal("True False", R("{{ 'b' in 'abc' }} {{ 3 not in [1, 3] }}"));
        Assert.Equal("2.5 2 1 -1", R("{{ 5 / 2 }} {{ 5 // 2 }} {{ 5 % 2 }} {{ -7 // 4 + 1 }}"));
    }

    [Fact]
    public void Tests_DefinedNoneString()
    {
        Assert.Equal("u d n s", R("{{ 'u' if x is not defined }} {{ 'd' if y is defined }} {{ 'n' if y is none }} {{ 's' if 'a' is string }}", V(("y", null))));
        Assert.Equal("ok", R("{% if m.missing is not defined and m['role'] == 'user' and m.role == 'user' %}ok{% endif %}", V(("m", new Dictionary<string, object?> { ["role"] = "user" }))));
    }

    [Fact]
    public void Filters()
    {
        Assert.Equal("hi|2|{\"a\": [1, \"x\\n\"], \"b\": null}", R("{{ '  hi ' | trim }}|{{ [1, 2] | length }}|{{ d | tojson }}",
            V(("d", new Dictionary<string, object?> { ["a"] = new List<object?> { 1, "x\n" }, ["b"] = null }))));
        var msgs = new[] { ChatMessage.User("a"), ChatMessage.Assistant("b"), ChatMessage.User("c") };
        Assert.Equal("a,c", R("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(',') }}", null, msgs));
        Assert.Equal("x|HI|3", R("{{ none | default('x') }}|{{ 'hi' | upper }}|{{ '3' | int }}".Replace("none | default('x')", "undefined_var | default('x')")));
        Assert.Equal("{\n  \"k\": 1\n}", R("{{ d | tojson(indent=2) }}", V(("d", new Dictionary<string, object?> { ["k"] = 1 }))));
    }

    [Fact]
    public void Macro_And_StringMethods()
    {
        Assert.Equal("<b>x</b><b>y</b>", R("{% macro b(t) %}<b>{{ t }}</b>{% endmacro %}{{ b('x') }}{{ b(t='y') }}"));
        Assert.Equal("a b|True|x-y", R("{{ '  a b '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'x y'.replace(' ', '-') }}"));
    }

    [Fact]
    public void Messages_BosEos_RaiseException()
    {
        Assert.Equal("<s>user:hi</s>", R("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m['content'] }}{% endfor %}{{ eos_token }}", null, ChatMessage.User("hi")));
        var e = Assert.Throws<ChatTemplateException>(() => R("{{ raise_exception('nope') }}"));
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void ParseErrors_NameTheLine()
    {
        var e = Assert.Throws<ChatTemplateException>(() => new ChatTemplate("a\nb\n{% if x %}\nno end"));
        Assert.Contains("line 3", e.Message);
        Assert.Contains("not closed", e.Message);
        var u = Assert.Throws<ChatTemplateException>(() => R("\n{{ x | nosuchfilter }}"));
        Assert.Contains("line 2", u.Message);
        Assert.Throws<ChatTemplateException>(() => new ChatTemplate("{{ 'open }}"));
    }

    /// <summary>A Llama-3-style template (header markers, trim inside concatenation, date, dictsort).</summary>
    [Fact]
    public void Llama3Style_Template()
    {
        const string src = """
            {{- bos_token }}
            {%- if messages[0]['role'] == 'system' %}
                {%- set system_message = messages[0]['content']|trim %}
                {%- set messages = messages[1:] %}
            {%- else %}
                {%- set system_message = "" %}
            {%- endif %}
            {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
            {{- "Today Date: " + strftime_now("%Y") | length | string + "\n\n" }}
            {{- system_message }}
            {{- "<|eot_id|>" }}
            {%- for message in messages %}
                {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
            {%- endfor %}
            {%- if add_generation_prompt %}
                {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
            {%- endif %}
            {%- for k, v in {'b': 2, 'a': 1} | dictsort %}{{ k }}{{ v }}{% endfor %}
            """;
        var t = new ChatTemplate(src, "<|begin_of_text|>", "<|eot_id|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nToday Date: 4\n\nBe brief.<|eot_id|>" +
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na1b2",
            t.Render([ChatMessage.System(" Be brief. "), ChatMessage.User("  Hi\n")], addGenerationPrompt: true));
    }
}
