using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>Python methods and the less common Jinja filters (expected values as CPython 3 / Jinja2 give them), and
/// the errors for constructs the interpreter does not support (each names the construct).</summary>
public class JinjaPythonMethodsTests
{
    private static string R(string src, IReadOnlyDictionary<string, object?>? vars = null, params ChatMessage[] msgs) =>
        new ChatTemplate(src).Render(msgs, false, vars);

    [Fact]
    public void StringSplit_LikePython()
    {
        Assert.Equal("['a', 'b', '', 'c']", R("{{ 'a,b,,c'.split(',') }}"));
        Assert.Equal("['a', 'b', 'c']", R("{{ ' a b \n c '.split() }}"));
        Assert.Equal("['a', 'b,c']", R("{{ 'a,b,c'.split(',', 1) }}"));
        Assert.Equal("['a,b', 'c']", R("{{ 'a,b,c'.rsplit(',', 1) }}"));
        Assert.Equal("['a', 'b  c ']", R("{{ '  a b  c '.split(none, 1) }}"));
        Assert.Equal("['  a b', 'c']", R("{{ '  a b  c '.rsplit(none, 1) }}"));
        Assert.Equal("['a']", R("{{ 'a  '.split(none, 1) }}"));
        Assert.Equal("['x', 'y']", R("{{ 'x<think>y'.split(sep='<think>') }}"));
        Assert.Equal("['a', 'b', 'c']", R("{{ 'a\nb\r\nc\n'.splitlines() }}"));
        // Qwen3's reasoning extraction
        Assert.Equal("plan|answer", R(
            "{% set c = '<think>\nplan\n</think>\n\nanswer' %}{{ c.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }}|{{ c.split('</think>')[-1].lstrip('\n') }}"));
    }

    [Fact]
    public void StringMethods_FormatFindCountJoinPrefixes()
    {
        Assert.Equal("a and b|xxy|{x}", R("{{ '{} and {}'.format('a', 'b') }}|{{ '{0}{0}{name}'.format('x', name='y') }}|{{ '{{x}}'.format() }}"));
        Assert.Equal("2 3 -1 2", R("{{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }}"));
        Assert.Equal("a-b|True|False|True", R("{{ '-'.join(['a', 'b']) }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ 'abc'.endswith(['x', 'y']) }}|{{ 'abc'.endswith('bc') }}"));
        Assert.Equal("bba|tail|head", R("{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'pre-tail'.removeprefix('pre-') }}|{{ 'head.md'.removesuffix('.md') }}"));
        Assert.Equal("True False True", R("{{ '123'.isdigit() }} {{ ''.isdigit() }} {{ ' \t'.isspace() }}"));
    }

    [Fact]
    public void ListAndDictMethods_Mutate()
    {
        Assert.Equal("3[1, 2]", R("{% set xs = [1, 2, 3] %}{{ xs.pop() }}{{ xs }}"));
        Assert.Equal("[9, 1, 2, 4, 5]|1|2", R("{% set xs = [1, 2] %}{% set _ = xs.insert(0, 9) %}{% set _ = xs.extend([4, 5]) %}{{ xs }}|{{ xs.index(1) }}|{{ [1, 1, 2].count(1) }}"));
        Assert.Equal("{\"a\": 1, \"b\": 2, \"c\": 3}|7|3",
            R("{% set d = {'a': 1} %}{% set _ = d.update({'b': 2}, c=3) %}{{ d | tojson }}|{{ d.setdefault('z', 7) }}|{{ d.pop('c') }}"));
    }

    [Fact]
    public void Filters_IndentSortSumMinMaxRoundFormat()
    {
        Assert.Equal("a\n  b\n\n  c", R("{{ 'a\nb\n\nc' | indent(2) }}"));
        Assert.Equal("  a\n  b", R("{{ 'a\nb' | indent(2, true) }}"));
        Assert.Equal("[1, 2, 3]|['A', 'b', 'c']|[3, 2, 1]", R("{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'c'] | sort }}|{{ [3, 1, 2] | sort(reverse=true) }}"));
        var msgs = new[] { ChatMessage.User("u"), ChatMessage.Assistant("a"), ChatMessage.System("s") };
        Assert.Equal("asu", R("{{ messages | sort(attribute='role') | map(attribute='content') | join }}", null, msgs));
        Assert.Equal("6 16 1 3 a", R("{{ [1, 2, 3] | sum }} {{ [1, 2, 3] | sum(start=10) }} {{ [3, 1] | min }} {{ [3, 1] | max }} {{ ['B', 'a'] | min }}"));
        Assert.Equal("2.0 3.14 3.0 2.0", R("{{ 2.5 | round }} {{ 3.14159 | round(2) }} {{ 2.1 | round(method='ceil') }} {{ 2.9 | round(0, 'floor') }}"));
        Assert.Equal("3|1-x|user", R("{{ 'a b  c' | wordcount }}|{{ '%s-%s' | format(1, 'x') }}|{{ messages[0] | attr('role') }}", null, msgs));
    }

    [Fact]
    public void ToJson_SortKeysAndSeparators()
    {
        var d = new Dictionary<string, object?> { ["b"] = new List<object?> { 1, 2 }, ["a"] = 1 };
        var vars = new Dictionary<string, object?> { ["d"] = d };
        Assert.Equal("{\"a\": 1, \"b\": [1, 2]}", R("{{ d | tojson(sort_keys=true) }}", vars));
        Assert.Equal("{\"b\":[1,2],\"a\":1}", R("{{ d | tojson(separators=(',', ':')) }}", vars));
        Assert.Equal("{\n  \"b\": [\n    1,\n    2\n  ],\n  \"a\": 1\n}", R("{{ d | tojson(indent=2) }}", vars));
    }

    [Fact]
    public void Loop_CycleAndDepth()
    {
        Assert.Equal("oeo|11", R("{% for x in [1, 2, 3] %}{{ loop.cycle('o', 'e') }}{% endfor %}|{% for x in [1] %}{{ loop.depth }}{% for y in [2] %}{{ loop.depth }}{% endfor %}{% endfor %}"));
    }

    [Theory]
    [InlineData("{% include 'other.jinja' %}", "unsupported statement 'include'")]
    [InlineData("{% filter upper %}x{% endfilter %}", "unsupported statement 'filter'")]
    [InlineData("{% call f() %}x{% endcall %}", "unsupported statement 'call'")]
    [InlineData("{% set a, b = 1, 2 %}", "tuple unpacking in 'set'")]
    [InlineData("{{ dict(**x) }}", "*args/**kwargs")]
    [InlineData("{{ 'x'.zfill(3) }}", "string has no method 'zfill'")]
    [InlineData("{{ [1].sorted() }}", "list has no method 'sorted'")]
    [InlineData("{{ no_such_function(1) }}", "unknown function 'no_such_function'")]
    [InlineData("{{ 1 | no_such_filter }}", "unknown filter 'no_such_filter'")]
    [InlineData("{{ 1 is no_such_test }}", "unknown test 'no_such_test'")]
    [InlineData("{{ '{:>5}'.format(1) }}", "str.format spec ':>5' is not supported")]
    public void UnsupportedConstructs_ThrowNamingThem(string source, string expected)
    {
        var e = Assert.Throws<ChatTemplateException>(() => R(source));
        Assert.Contains(expected, e.Message);
        Assert.Contains("chat template", e.Message);
    }
}
