using EdgeTune.Text.Datasets;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Tests.Text.Datasets;

public class JsonlReaderTests
{
    private static (JsonlReader.Result Result, RejectionLog Log) Read(DataFormat format, params string[] lines)
    {
        var log = new RejectionLog(5);
        return (JsonlReader.Read(lines, "test", format, log), log);
    }

    [Fact]
    public void Detects_EachFormat_FromFirstValidLine()
    {
        Assert.Equal(DataFormat.JsonlText, JsonlReader.Detect(["", "not json", "{\"text\": \"a\"}"]));
        Assert.Equal(DataFormat.Instruction, JsonlReader.Detect(["[1]", "{\"instruction\": \"a\", \"output\": \"b\"}"]));
        Assert.Equal(DataFormat.Chat, JsonlReader.Detect(["{\"messages\": []}"]));
        Assert.Null(JsonlReader.Detect(["{\"foo\": 1}", "x"]));
        Assert.Throws<InvalidDataException>(() => Read(DataFormat.Auto, "{\"foo\": 1}"));
    }

    [Fact]
    public void Instruction_Plain_And_SelfInstructInstances()
    {
        var (r, log) = Read(DataFormat.Auto,
            "{\"instruction\": \"Add\", \"input\": \"1+1\", \"output\": \"2\"}",
            "",
            "{\"instruction\": \"Greet\", \"output\": \"Hello\", \"input\": null}",
            "{\"instruction\": \"Pick\", \"instances\": [{\"input\": \"a\", \"output\": \"A\"}, {\"input\": \"\", \"output\": \"B\"}]}");
        Assert.Equal(DataFormat.Instruction, r.Format);
        Assert.Equal(3, r.RowsRead);
        Assert.Equal(0, log.Rows);
        Assert.Equal(4, r.Samples.Count);
        Assert.Equal(new DataSample(1, Instruction: "Add", Input: "1+1", Output: "2"), r.Samples[0]);
        Assert.Equal(3, r.Samples[1].Line);
        Assert.Null(r.Samples[1].Input);
        Assert.Equal((4, "a", "A"), (r.Samples[2].Line, r.Samples[2].Input, r.Samples[2].Output));
        Assert.Equal((4, "", "B"), (r.Samples[3].Line, r.Samples[3].Input, r.Samples[3].Output));
    }

    [Fact]
    public void MalformedRows_AreRejected_WithReasonsAndLines()
    {
        var (r, log) = Read(DataFormat.Instruction,
            "{\"instruction\": \"ok\", \"output\": \"fine\"}",   // 1 good
            "{\"instruction\": \"x\", \"output\": ",             // 2 invalid JSON
            "[\"instruction\"]",                                  // 3 not an object
            "{\"instruction\": \"x\"}",                           // 4 missing output
            "{\"instruction\": 5, \"output\": \"y\"}",            // 5 wrong type
            "{\"instruction\": \"x\", \"output\": \"  \"}",       // 6 empty output
            "{\"instruction\": \"x\", \"input\": [1], \"output\": \"y\"}", // 7 wrong type
            "{\"instruction\": \"x\", \"output\": \"y\"}");       // 8 good
        Assert.Equal(8, r.RowsRead);
        Assert.Equal([1, 8], r.Samples.Select(s => s.Line));
        Assert.Equal(6, log.Rows);
        var reasons = log.ToList().ToDictionary(x => x.Reason);
        Assert.Equal([2], reasons[JsonlReader.ReasonInvalidJson].Examples.Select(e => e.Line));
        Assert.Equal([3], reasons[JsonlReader.ReasonNotObject].Examples.Select(e => e.Line));
        Assert.Equal([4], reasons[JsonlReader.ReasonMissingField].Examples.Select(e => e.Line));
        Assert.Contains("'output'", reasons[JsonlReader.ReasonMissingField].Examples[0].Detail);
        Assert.Equal(2, reasons[JsonlReader.ReasonWrongType].Count);
        Assert.Equal([5, 7], reasons[JsonlReader.ReasonWrongType].Examples.Select(e => e.Line));
        Assert.Contains("'input' is Array", reasons[JsonlReader.ReasonWrongType].Examples[1].Detail);
        Assert.Equal([6], reasons[JsonlReader.ReasonEmpty].Examples.Select(e => e.Line));
    }

    [Fact]
    public void Chat_And_Text_Rows_Validated()
    {
        var (r, log) = Read(DataFormat.Chat,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
            "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
            "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}",
            "{\"messages\": {\"role\": \"user\"}}",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"\"}]}");
        Assert.Single(r.Samples);
        Assert.Equal(["user", "assistant"], r.Samples[0].Messages!.Select(m => m.Role));
        var reasons = log.ToList().ToDictionary(x => x.Reason, x => x.Examples.Select(e => e.Line).ToArray());
        Assert.Equal([2], reasons[JsonlReader.ReasonNoAssistant]);
        Assert.Equal([3], reasons[JsonlReader.ReasonBadRole]);
        Assert.Equal([4], reasons[JsonlReader.ReasonMissingField]);
        Assert.Equal([5], reasons[JsonlReader.ReasonWrongType]);
        Assert.Equal([6], reasons[JsonlReader.ReasonEmpty]);

        var (t, tlog) = Read(DataFormat.JsonlText, "{\"text\": \"abc\"}", "{\"text\": \"\"}", "{\"txt\": \"abc\"}");
        Assert.Single(t.Samples);
        Assert.Equal(2, tlog.Rows);
    }

    [Fact]
    public void RejectionLog_KeepsFirstNExamples_ButCountsAll()
    {
        var lines = Enumerable.Range(0, 20).Select(_ => "oops").ToArray();
        var log = new RejectionLog(3);
        var r = JsonlReader.Read(lines.Prepend("{\"text\": \"a\"}"), "t", DataFormat.Auto, log);
        var only = Assert.Single(log.ToList());
        Assert.Equal(20, only.Count);
        Assert.Equal([2, 3, 4], only.Examples.Select(e => e.Line));
        Assert.Single(r.Samples);
    }
}
