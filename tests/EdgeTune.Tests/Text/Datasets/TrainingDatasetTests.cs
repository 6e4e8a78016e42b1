using EdgeTune.Tensors;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Tests.Text.Datasets;

public class TrainingDatasetTests
{
    private static readonly ByteTokenizer Tok = new();

    private static string Chat(string user, string assistant) =>
        $"{{\"messages\": [{{\"role\": \"user\", \"content\": \"{user}\"}}, {{\"role\": \"assistant\", \"content\": \"{assistant}\"}}]}}";

    private static void AssertTargetsAreNextTokens(TrainingSequence s)
    {
        for (int t = 0; t + 1 < s.Length; t++)
            if (s.Targets[t] != CrossEntropy.IgnoreIndex) Assert.Equal(s.Tokens[t + 1], s.Targets[t]);
    }

    [Fact]
    public void PlainText_Windows_AndTailValidation()
    {
        using var files = new DatasetTestFiles();
        var lines = Enumerable.Range(0, 20).Select(i => $"line {i:D2} of the text").ToArray();
        string path = files.Write("corpus.txt", lines);
        var ds = TrainingDataset.Load(path, Tok, null, new DatasetOptions { SeqLen = 32, ValidationFraction = 0.25 });
        var r = ds.Report;
        Assert.Equal(DataFormat.PlainText, r.Format);
        Assert.Equal(20, r.RowsRead);
        Assert.Equal((15, 5), (r.TrainRows, r.ValidationRows));
        string trainText = string.Concat(ds.Train.Select(s => Tok.Decode(s.Tokens, skipSpecial: true)));
        string valText = string.Concat(ds.Validation.Select(s => Tok.Decode(s.Tokens, skipSpecial: true)));
        Assert.StartsWith("line 00", trainText);
        Assert.Contains("line 14 of the text\n", trainText);
        Assert.DoesNotContain("line 15", trainText);
        Assert.StartsWith("line 15", valText);
        Assert.Contains("line 19 of the text", valText);
        foreach (var s in ds.Train.Concat(ds.Validation)) AssertTargetsAreNextTokens(s);
        // every byte of the head (plus BOS/EOS) is a target exactly once
        string head = string.Join("\n", lines[..15]) + "\n";
        Assert.Equal(head.Length + 1, r.TrainedTokens);
        Assert.Contains("PlainText", r.Describe());

        var byCount = TrainingDataset.Load(path, Tok, null, new DatasetOptions { SeqLen = 32, ValidationCount = 2 });
        Assert.Equal(2, byCount.Report.ValidationRows);
    }

    [Fact]
    public void JsonlText_PackedWithEverythingTrained()
    {
        using var files = new DatasetTestFiles();
        string path = files.Write("d.jsonl", "{\"text\": \"hello\"}", "{\"text\": \"world!\"}", "{\"text\": 3}");
        var ds = TrainingDataset.Load(path, Tok, null, new DatasetOptions { SeqLen = 64 });
        var r = ds.Report;
        Assert.Equal(DataFormat.JsonlText, r.Format);
        Assert.Equal((3, 2, 1), (r.RowsRead, r.RowsUsed, r.RowsRejected));
        var s = Assert.Single(ds.Train);
        Assert.Equal(2, s.Samples);
        Assert.Equal("<|bos|>hello<|eos|><|bos|>world!<|eos|>", Tok.Decode(s.Tokens.AsSpan(0, 15)));
        Assert.Equal((1 + 5) + (1 + 6), s.TrainedTokens); // text + EOS of each; BOS never a target
        Assert.Equal(r.TrainedTokens, s.TrainedTokens);
        Assert.Equal(CrossEntropy.IgnoreIndex, s.Targets[6]); // EOS of sample 1 does not predict sample 2
        AssertTargetsAreNextTokens(s);
        Assert.Equal(1, r.PackedSequences);
        Assert.Equal(15, r.TokensTotal);
        Assert.Equal(ByteTokenizer.Pad, s.Tokens[15]);
    }

    [Fact]
    public void Chat_File_Masks_Rejects_AndReports()
    {
        using var files = new DatasetTestFiles();
        string path = files.Write("chat.jsonl", Chat("hi", "hello"), "{bad", Chat("q", "a long answer that will not fit in the window of one hundred tokens, since each byte is a token here"), Chat("x", "y"));
        var ds = TrainingDataset.Load(path, Tok, new ChatTemplate(ChatTemplates.ChatML), new DatasetOptions { SeqLen = 100, Pack = false });
        var r = ds.Report;
        Assert.Equal(DataFormat.Chat, r.Format);
        Assert.Equal(4, r.RowsRead);
        Assert.Equal(3, r.RowsUsed);
        Assert.Equal(1, r.TruncatedRows);
        Assert.Equal(3, ds.Train.Count);
        Assert.Equal("hello<|im_end|>".Length, ds.Train[0].TrainedTokens);
        var rej = Assert.Single(r.Rejections);
        Assert.Equal((JsonlReader.ReasonInvalidJson, 1, 2), (rej.Reason, rej.Count, rej.Examples[0].Line));
        Assert.Contains("line 2", r.Describe());

        // the same file with a short seq-len: the response falls outside the window and the row is rejected
        var tiny = TrainingDataset.Load(path, Tok, new ChatTemplate(ChatTemplates.ChatML), new DatasetOptions { SeqLen = 40 });
        Assert.Contains(tiny.Report.Rejections, x => x.Reason == TrainingDataset.ReasonNoTrainedToken);
    }

    [Fact]
    public void ValidationSplit_Deterministic_Disjoint_BySeed()
    {
        var samples = Enumerable.Range(1, 40).Select(i => DataSample.FromInstruction(i, $"q{i}", null, $"answer {i}")).ToList();
        DatasetOptions Opt(ulong seed) => new() { SeqLen = 256, ValidationFraction = 0.2, Seed = seed, Pack = false };
        static HashSet<string> Texts(IEnumerable<TrainingSequence> seqs) => seqs.Select(s => Tok.Decode(s.Tokens, skipSpecial: true)).ToHashSet();
        var a = TrainingDataset.FromSamples(samples, Tok, null, Opt(7));
        var b = TrainingDataset.FromSamples(samples, Tok, null, Opt(7));
        var c = TrainingDataset.FromSamples(samples, Tok, null, Opt(8));
        Assert.Equal((32, 8), (a.Report.TrainRows, a.Report.ValidationRows));
        Assert.Equal(8, a.Validation.Count);
        Assert.Equal(Texts(a.Validation), Texts(b.Validation));
        Assert.Empty(Texts(a.Validation).Intersect(Texts(a.Train)));
        Assert.Equal(40, Texts(a.Validation).Union(Texts(a.Train)).Count());
        Assert.NotEqual(Texts(a.Validation), Texts(c.Validation));
        var n = TrainingDataset.FromSamples(samples, Tok, null, Opt(7) with { ValidationCount = 5 });
        Assert.Equal(5, n.Validation.Count);
        Assert.Equal(DataFormat.Instruction, n.Report.Format);
    }

    [Fact]
    public void Report_Json_RoundTrips()
    {
        var samples = new[] { DataSample.FromText(1, "abc") };
        var r = TrainingDataset.FromSamples(samples, Tok, null, new DatasetOptions { SeqLen = 8 }).Report;
        string json = r.ToJson();
        Assert.Contains("\"format\":\"JsonlText\"".Replace("JsonlText", r.Format.ToString()), json);
        Assert.Contains("\"trained_tokens\":4", json);
        Assert.Equal(r with { Rejections = [] }, DataReport.FromJson(json) with { Rejections = [] });
    }

    [SkippableFact]
    public void RealSelfInstructFiles_Load_WithSensibleReport()
    {
        foreach (string name in new[] { "self_instruct_seed_tasks.jsonl", "self_instruct_user_oriented_instructions.jsonl" })
        {
            string path = TestAssets.Require("instruct/" + name);
            var ds = TrainingDataset.Load(path, Tok, new ChatTemplate(ChatTemplates.ChatML), new DatasetOptions { SeqLen = 1024, ValidationFraction = 0.1 });
            var r = ds.Report;
            Assert.Equal(DataFormat.Instruction, r.Format);
            Assert.Equal(File.ReadLines(path).Count(l => l.Trim().Length > 0), r.RowsRead);
            Assert.True(r.RowsUsed >= r.RowsRead * 9 / 10, r.Describe());
            Assert.True(r.Samples >= r.RowsUsed);
            Assert.True(r.TrainedTokens > 0 && r.TrainedTokens < r.TokensTotal);
            Assert.True(r.ValidationSequences > 0 && r.TrainSequences > r.ValidationSequences);
            foreach (var s in ds.Train) AssertTargetsAreNextTokens(s);
        }
    }

    [SkippableFact]
    public void TinyShakespeare_HeldOutTail()
    {
        string path = TestAssets.Require("text/tinyshakespeare.txt");
        var ds = TrainingDataset.Load(path, Tok, null, new DatasetOptions { SeqLen = 256, ValidationFraction = 0.1 });
        var r = ds.Report;
        Assert.Equal(40000, r.RowsRead);
        Assert.Equal(4000, r.ValidationRows);
        long bytes = new FileInfo(path).Length;
        Assert.InRange(r.TokensTotal, bytes, bytes + 4);
        Assert.Equal(r.TrainedTokens + r.ValidationTrainedTokens, r.TokensTotal - 2);
        Assert.StartsWith("<|bos|>First Citizen:", Tok.Decode(ds.Train[0].Tokens));
        Assert.InRange(ds.Validation.Count, r.TrainSequences / 12, r.TrainSequences / 7);
    }

    [SkippableFact]
    public void Llama2cTokenizer_PlainText_IsOneStream_WithoutSpuriousSpaces()
    {
        var tok = TestTokenizers.Get("stories260K/tok512.bin");
        Assert.True(TrainingDataset.AddsDummyPrefix(tok));
        Assert.False(TrainingDataset.AddsDummyPrefix(Tok));
        string text = string.Join("\n", File.ReadLines(TestAssets.Require("text/tinyshakespeare.txt")).Take(300)) + "\n";
        var ds = TrainingDataset.FromText(text, tok, new DatasetOptions { SeqLen = 64 });
        int[] expected = [tok.BosId!.Value, .. tok.Encode(text, parseSpecial: false), tok.EosId!.Value];
        Assert.Equal(expected.Length, ds.Report.TokensTotal);
        var inputs = ds.Train.SelectMany(s => s.Tokens.Take(s.TrainedTokens)).ToArray();
        Assert.Equal(expected[..^1], inputs);
        Assert.Equal(text, tok.Decode(inputs, skipSpecial: true));
    }
}
