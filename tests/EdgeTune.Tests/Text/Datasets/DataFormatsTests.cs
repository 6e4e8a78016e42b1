using System.Text;
using System.Text.Json;
using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;
using static EdgeTune.Tests.Text.Datasets.DataFileWriters;

namespace EdgeTune.Tests.Text.Datasets;

/// <summary>Every layout in every container trains as rows: the same sequences, tokens and loss masks as the JSONL
/// form the loader has always read; preference data and binary files are refused.</summary>
public class DataFormatsTests
{
    private static readonly ByteTokenizer Tok = new();
    private static readonly ChatTemplate ChatMl = new(ChatTemplates.ChatML);
    private static readonly DatasetOptions Exact = new() { SeqLen = 512, Pack = false };

    private static string Json(object o) => JsonSerializer.Serialize(o);

    private static object Msg(string role, string content) => new Dictionary<string, string> { ["role"] = role, ["content"] = content };

    /// <summary>The text of the target positions that carry a loss: what the model is trained to write.</summary>
    private static string Trained(TrainingSequence s) =>
        Tok.Decode(s.Targets.Where(t => t != CrossEntropy.IgnoreIndex).ToArray());

    private static void AssertSameSequences(TrainingDataset expected, TrainingDataset actual)
    {
        Assert.Equal(expected.Train.Count, actual.Train.Count);
        Assert.True(expected.Train.Count > 0);
        for (int i = 0; i < expected.Train.Count; i++)
        {
            Assert.Equal(expected.Train[i].Tokens, actual.Train[i].Tokens);
            Assert.Equal(expected.Train[i].Targets, actual.Train[i].Targets);
        }
    }

    private static readonly (string Instruction, string Input, string Output)[] Alpaca =
    [
        ("Add the numbers.", "2, 3", "5"),
        ("Name a colour.", "", "Blue, \"sky\" blue"),
        ("Write two lines.", "about rain", "Rain falls,\nthe street shines."),
    ];

    private static string AlpacaJsonl(DatasetTestFiles files) =>
        files.Write("alpaca.jsonl", Alpaca.Select(a => Json(new { instruction = a.Instruction, input = a.Input, output = a.Output })).ToArray());

    [Fact]
    public void AlpacaJsonArray_TrainsAsRows_NotAsJsonText()
    {
        using var files = new DatasetTestFiles();
        var rows = Alpaca.Select(a => new Dictionary<string, string> { ["instruction"] = a.Instruction, ["input"] = a.Input, ["output"] = a.Output })
            .Append(new Dictionary<string, string> { ["instruction"] = "Empty.", ["output"] = " " }).ToList();
        string path = files.WriteText("data.json", JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
        var ds = TrainingDataset.Load(path, Tok, null, Exact);
        var r = ds.Report;
        Assert.Equal((DataFormat.Instruction, DataFileKind.JsonArray), (r.Format, r.FileKind));
        Assert.Equal("alpaca: instruction+input -> prompt, output -> completion", r.Columns);
        Assert.Equal((4, 3, 1), (r.RowsRead, r.RowsUsed, r.RowsRejected));
        Assert.Equal(4, Assert.Single(r.Rejections).Examples[0].Line);
        Assert.Contains("alpaca: instruction+input", r.Describe());
        Assert.Equal(Alpaca.Select(a => a.Output + "<|eos|>"), ds.Train.Select(Trained));
        Assert.DoesNotContain(ds.Train, s => Tok.Decode(s.Tokens).Contains("\"instruction\"", StringComparison.Ordinal));
        AssertSameSequences(TrainingDataset.Load(AlpacaJsonl(files), Tok, null, Exact), ds);
    }

    [Fact]
    public void ShareGpt_ReadsAsTheSameChat_AsMessages()
    {
        using var files = new DatasetTestFiles();
        string sharegpt = files.Write("sharegpt.jsonl",
            Json(new { conversations = new[] { new { from = "system", value = "Be brief." }, new { from = "human", value = "Hi" }, new { from = "gpt", value = "Hello!" },
                new { from = "human", value = "2+2?" }, new { from = "gpt", value = "4" } } }),
            Json(new { conversations = new[] { new { from = "user", value = "Colour?" }, new { from = "assistant", value = "Red" } } }),
            Json(new { conversations = new[] { new { from = "narrator", value = "x" }, new { from = "gpt", value = "y" } } }));
        string messages = files.Write("messages.jsonl",
            Json(new { messages = new[] { Msg("system", "Be brief."), Msg("user", "Hi"), Msg("assistant", "Hello!"), Msg("user", "2+2?"), Msg("assistant", "4") } }),
            Json(new { messages = new[] { Msg("user", "Colour?"), Msg("assistant", "Red") } }));
        var ds = TrainingDataset.Load(sharegpt, Tok, ChatMl, Exact);
        Assert.Equal(DataFormat.ShareGpt, ds.Report.Format);
        Assert.StartsWith("sharegpt: conversations from/value", ds.Report.Columns);
        Assert.Equal(JsonlReader.ReasonBadRole, Assert.Single(ds.Report.Rejections).Reason);
        Assert.Equal(["Hello!<|im_end|>4<|im_end|>", "Red<|im_end|>"], ds.Train.Select(Trained));
        AssertSameSequences(TrainingDataset.Load(messages, Tok, ChatMl, Exact), ds);
    }

    [Fact]
    public void Messages_WithSystemAndToolRoles_TrainOnlyAssistantTurns()
    {
        using var files = new DatasetTestFiles();
        string path = files.Write("tools.jsonl", Json(new
        {
            messages = new[]
            {
                Msg("system", "You can call tools."), Msg("user", "Weather in Oslo?"), Msg("assistant", "call weather(Oslo)"),
                Msg("tool", "{\"temp\": -3}"), Msg("assistant", "It is -3 C."),
            },
        }));
        var ds = TrainingDataset.Load(path, Tok, ChatMl, Exact);
        Assert.Equal(DataFormat.Chat, ds.Report.Format);
        Assert.StartsWith("messages:", ds.Report.Columns);
        Assert.Equal("call weather(Oslo)<|im_end|>It is -3 C.<|im_end|>", Trained(Assert.Single(ds.Train)));
        Assert.Contains("<|im_start|>tool\n{\"temp\": -3}", Tok.Decode(ds.Train[0].Tokens));
    }

    [Fact]
    public void PromptCompletion_MasksThePrompt_AndConversationalFormIsAChat()
    {
        using var files = new DatasetTestFiles();
        string path = files.Write("pc.jsonl", Json(new { prompt = "2+2=", completion = " 4" }), Json(new { prompt = "The sky is", completion = " blue." }),
            Json(new { prompt = "x", completion = "" }));
        var ds = TrainingDataset.Load(path, Tok, ChatMl, Exact);
        var r = ds.Report;
        Assert.Equal(DataFormat.PromptCompletion, r.Format);
        Assert.Equal("prompt-completion: prompt -> prompt, completion -> completion", r.Columns);
        Assert.Equal(JsonlReader.ReasonEmpty, Assert.Single(r.Rejections).Reason);
        Assert.StartsWith("<|bos|>2+2= 4<|eos|>", Tok.Decode(ds.Train[0].Tokens));
        Assert.Equal([" 4<|eos|>", " blue.<|eos|>"], ds.Train.Select(Trained));

        string conv = files.Write("pc-conv.jsonl", Json(new { prompt = new[] { Msg("system", "Sys"), Msg("user", "Hi") }, completion = new[] { Msg("assistant", "Hey") } }));
        string messages = files.Write("m.jsonl", Json(new { messages = new[] { Msg("system", "Sys"), Msg("user", "Hi"), Msg("assistant", "Hey") } }));
        var c = TrainingDataset.Load(conv, Tok, ChatMl, Exact);
        Assert.Equal(DataFormat.PromptCompletion, c.Report.Format);
        Assert.Equal("Hey<|im_end|>", Trained(Assert.Single(c.Train)));
        AssertSameSequences(TrainingDataset.Load(messages, Tok, ChatMl, Exact), c);
    }

    [Fact]
    public void Csv_WithQuotedCells_AndJsonListCells_TrainsAsRows()
    {
        using var files = new DatasetTestFiles();
        string csv = files.WriteText("alpaca.csv", Csv(',', [["instruction", "input", "output"], .. Alpaca.Select(a => new[] { a.Instruction, a.Input, a.Output })]));
        var ds = TrainingDataset.Load(csv, Tok, null, Exact);
        Assert.Equal((DataFormat.Instruction, DataFileKind.Csv, 3), (ds.Report.Format, ds.Report.FileKind, ds.Report.RowsUsed));
        AssertSameSequences(TrainingDataset.Load(AlpacaJsonl(files), Tok, null, Exact), ds);

        string chat = Json(new[] { Msg("user", "Hi, there"), Msg("assistant", "Hello \"you\"") });
        string messagesCsv = files.WriteText("chat.csv", Csv(',', ["id", "messages"], ["1", chat], ["2", "[{\"role\": \"user\""], ["3", chat]));
        var m = TrainingDataset.Load(messagesCsv, Tok, ChatMl, Exact);
        Assert.Equal((DataFormat.Chat, 3, 2), (m.Report.Format, m.Report.RowsRead, m.Report.RowsUsed));
        var bad = Assert.Single(m.Report.Rejections);
        Assert.Equal((JsonlReader.ReasonInvalidJson, 3), (bad.Reason, bad.Examples[0].Line)); // the header is line 1
        Assert.Equal("Hello \"you\"<|im_end|>", Trained(m.Train[0]));

        string tsv = files.WriteText("text.tsv", Csv('\t', ["text"], ["first, with a comma"], ["second"]));
        var t = TrainingDataset.Load(tsv, Tok, null, Exact);
        Assert.Equal((DataFormat.JsonlText, DataFileKind.Csv), (t.Report.Format, t.Report.FileKind));
        Assert.Equal(["first, with a comma<|eos|>", "second<|eos|>"], t.Train.Select(Trained));
    }

    [Fact]
    public void Parquet_TextAndAlpaca_TrainAsRows_AcrossRowGroups()
    {
        using var files = new DatasetTestFiles();
        string alpaca = WriteParquet(files.PathOf("alpaca.parquet"),
            Alpaca.Select(a => new AlpacaRow { Instruction = a.Instruction, Input = a.Input, Output = a.Output }), rowGroupSize: 2);
        var ds = TrainingDataset.Load(alpaca, Tok, null, Exact);
        Assert.Equal((DataFormat.Instruction, DataFileKind.Parquet, 3), (ds.Report.Format, ds.Report.FileKind, ds.Report.RowsRead));
        AssertSameSequences(TrainingDataset.Load(AlpacaJsonl(files), Tok, null, Exact), ds);

        string text = WriteParquet(files.PathOf("text.parquet"), new[] { "alpha", null, "gamma" }.Select(x => new TextRow { Text = x }));
        var t = TrainingDataset.Load(text, Tok, null, Exact);
        Assert.Equal(["alpha<|eos|>", "gamma<|eos|>"], t.Train.Select(Trained));
        var rej = Assert.Single(t.Report.Rejections);
        Assert.Equal(2, rej.Examples[0].Line);
    }

    [Fact]
    public void Parquet_ListOfStructColumns_Messages_AndConversations()
    {
        using var files = new DatasetTestFiles();
        var messages = new List<MessagesRow>
        {
            new() { Id = 1, Messages = [T("system", "Sys"), T("user", "Hi"), T("assistant", "Hello!")] },
            new() { Id = 2, Messages = null },
            new() { Id = 3, Messages = [] },
            new() { Id = 4, Messages = [T("user", "2+2?"), T("assistant", "4"), T("user", "and 3+3?"), T("assistant", "6")] },
            new() { Id = 5, Messages = [T("user", "q"), new Turn { Role = "assistant", Content = null }] },
        };
        string path = WriteParquet(files.PathOf("chat.parquet"), messages, rowGroupSize: 3);
        var ds = TrainingDataset.Load(path, Tok, ChatMl, Exact);
        var r = ds.Report;
        Assert.Equal((DataFormat.Chat, DataFileKind.Parquet, 5, 2), (r.Format, r.FileKind, r.RowsRead, r.RowsUsed));
        var reasons = r.Rejections.ToDictionary(x => x.Reason, x => x.Examples.Select(e => e.Line).ToArray());
        Assert.Equal([2, 5], reasons[JsonlReader.ReasonWrongType]); // a null list, a null content
        Assert.Equal([3], reasons[JsonlReader.ReasonNoAssistant]); // an empty list
        Assert.Contains("'messages[1].content' is Null", r.Rejections.Single(x => x.Reason == JsonlReader.ReasonWrongType).Examples[1].Detail);
        string jsonl = files.Write("chat.jsonl",
            Json(new { messages = new[] { Msg("system", "Sys"), Msg("user", "Hi"), Msg("assistant", "Hello!") } }),
            Json(new { messages = new[] { Msg("user", "2+2?"), Msg("assistant", "4"), Msg("user", "and 3+3?"), Msg("assistant", "6") } }));
        AssertSameSequences(TrainingDataset.Load(jsonl, Tok, ChatMl, Exact), ds);

        string sharegpt = WriteParquet(files.PathOf("sharegpt.parquet"), new[]
        {
            new ShareGptRow { Conversations = [S("system", "Sys"), S("human", "Hi"), S("gpt", "Hello!")] },
            new ShareGptRow { Conversations = [S("human", "2+2?"), S("gpt", "4"), S("human", "and 3+3?"), S("gpt", "6")] },
        });
        var g = TrainingDataset.Load(sharegpt, Tok, ChatMl, Exact);
        Assert.Equal(DataFormat.ShareGpt, g.Report.Format);
        AssertSameSequences(TrainingDataset.Load(jsonl, Tok, ChatMl, Exact), g);

        string pc = WriteParquet(files.PathOf("pc.parquet"), new[] { new PromptCompletionRow { Prompt = "2+2=", Completion = " 4" } });
        var p = TrainingDataset.Load(pc, Tok, null, Exact);
        Assert.Equal(DataFormat.PromptCompletion, p.Report.Format);
        Assert.Equal(" 4<|eos|>", Trained(Assert.Single(p.Train)));
    }

    [Fact]
    public void PreferenceData_IsRefused_NamingTheColumns_InEveryContainer()
    {
        using var files = new DatasetTestFiles();
        string jsonl = files.Write("dpo.jsonl", Json(new { prompt = "p", chosen = "good", rejected = "bad" }));
        string json = files.WriteText("dpo.json", "[" + Json(new { prompt = "p", chosen = "good", rejected = "bad" }) + "]");
        string csv = files.WriteText("dpo.csv", Csv(',', ["prompt", "chosen", "rejected"], ["p", "good", "bad"]));
        string parquet = WriteParquet(files.PathOf("dpo.parquet"), new[] { new PreferenceRow { Prompt = "p", Chosen = "good", Rejected = "bad" } });
        foreach (string path in new[] { jsonl, json, csv, parquet })
        {
            var e = Assert.Throws<InvalidDataException>(() => TrainingDataset.Load(path, Tok, ChatMl, Exact));
            Assert.StartsWith(path + ": preference data (columns prompt, chosen, rejected)", e.Message);
            Assert.Contains("SFT only", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void BinaryAndUnrecognisedFiles_AreRefused_NeverTrainedAsText()
    {
        using var files = new DatasetTestFiles();
        void Refused(string path, string expected)
        {
            var e = Assert.Throws<InvalidDataException>(() => TrainingDataset.Load(path, Tok, null, Exact));
            Assert.StartsWith(path + ": ", e.Message);
            Assert.Contains(expected, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Refused(files.WriteBytes("nul.txt", [.. "hello"u8, 0, .. "world"u8]), "a NUL byte at offset 5");
        Refused(files.WriteBytes("latin1.txt", [.. "caf"u8, 0xE9, .. " au lait"u8]), "invalid UTF-8 at byte 3");
        Refused(files.WriteBytes("weights.bin", [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 37 % 251))]), "binary data");
        Refused(files.WriteBytes("archive.txt.gz", [0x1F, 0x8B, 0x08, 0x00, 0xC3, 0x28, 0xA0, 0xA1]), "binary data");
        Refused(files.WriteText("fake.parquet", "text,not,parquet\n"), "not a Parquet file");
        Refused(files.WriteText("unknown.json", "[{\"question\": \"q\", \"answer\": \"a\"}]"), "no known data columns (found question, answer)");
        Refused(files.WriteText("unknown.jsonl", "{\"question\": \"q\"}\n"), "no known data columns (found question)");
        Refused(files.WriteText("number.json", "42"), "must hold an array of row objects");
        Refused(files.WriteText("broken.json", "[{\"text\": \"a\"},"), "not valid JSON");
        Refused(files.WriteText("noheader.csv", "\n"), "no header row");
        Refused(files.WriteText("columns.csv", "question,answer\nq,a\n"), "no known data columns (found question, answer)");

        // what stays plain text: UTF-8 text without a JSON start, whatever its extension
        var ok = TrainingDataset.Load(files.WriteText("notes", "just some notes\n"), Tok, null, Exact);
        Assert.Equal((DataFormat.PlainText, DataFileKind.Text), (ok.Report.Format, ok.Report.FileKind));
    }

    [Fact]
    public void SeveralFiles_LoadAsOneDataset_WithDistinctRowNumbers()
    {
        using var files = new DatasetTestFiles();
        string a = WriteParquet(files.PathOf("train-0.parquet"), new[] { new TextRow { Text = "one" }, new TextRow { Text = null } });
        string b = files.Write("train-1.jsonl", "", Json(new { text = "two" }), Json(new { text = 3 })); // rows on lines 2 and 3
        string c = files.Write("train-2.jsonl", Json(new { txt = "no" }), Json(new { text = "three" }));
        var ds = TrainingDataset.Load([a, b, c], Tok, null, Exact with { ValidationCount = 1 }, "all");
        var r = ds.Report;
        Assert.Equal(("all", 6, 3), (r.Source, r.RowsRead, r.RowsUsed));
        Assert.Equal([2, 5, 6], r.Rejections.SelectMany(x => x.Examples).Select(e => e.Line).Order()); // a:2, b:3 -> 2+3, c:1 -> 5+1
        Assert.Equal((2, 1), (ds.Train.Count, ds.Validation.Count));

        string chat = files.Write("chat.jsonl", Json(new { messages = new[] { Msg("user", "a"), Msg("assistant", "b") } }));
        var e = Assert.Throws<InvalidDataException>(() => TrainingDataset.Load([a, chat], Tok, ChatMl, Exact));
        Assert.Contains("must share a layout", e.Message);
    }
}
