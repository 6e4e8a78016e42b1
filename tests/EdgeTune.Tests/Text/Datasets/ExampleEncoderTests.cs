using EdgeTune.Text;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Tests.Text.Datasets;

public class ExampleEncoderTests
{
    private static readonly ChatMessage[] MultiTurn =
    [
        ChatMessage.System("Be brief."),
        ChatMessage.User("What is 2+2?"),
        ChatMessage.Assistant("4."),
        ChatMessage.User("And 3+3?\nThink."),
        ChatMessage.Assistant("6, I'm sure. 😀"),
        ChatMessage.User("Thanks"),
    ];

    /// <summary>The decoded text of each maximal run of trained tokens.</summary>
    internal static List<string> TrainedRuns(ITokenizer tok, TokenizedExample ex)
    {
        var runs = new List<string>();
        for (int i = 0; i < ex.Length;)
        {
            if (!ex.Loss[i]) { i++; continue; }
            int j = i;
            while (j < ex.Length && ex.Loss[j]) j++;
            runs.Add(tok.Decode(ex.Tokens.AsSpan(i, j - i)));
            i = j;
        }
        return runs;
    }

    [Fact]
    public void Chat_ByteTokenizer_ChatML_MasksExactlyEveryAssistantTurn()
    {
        var tok = new ByteTokenizer();
        var enc = new ExampleEncoder(tok, new ChatTemplate(ChatTemplates.ChatML));
        var ex = enc.Encode(DataSample.FromChat(7, MultiTurn));
        Assert.Equal(7, ex.Line);
        Assert.Equal(tok.Encode(new ChatTemplate(ChatTemplates.ChatML).Render(MultiTurn)), ex.Tokens);
        Assert.Equal(["4.<|im_end|>", "6, I'm sure. 😀<|im_end|>"], TrainedRuns(tok, ex));
    }

    [Fact]
    public void Chat_Zephyr_TrainsContentAndEos()
    {
        var tok = new ByteTokenizer();
        var enc = new ExampleEncoder(tok, new ChatTemplate(ChatTemplates.Zephyr, eosToken: ByteTokenizer.EosText));
        var ex = enc.Encode(DataSample.FromChat(1, MultiTurn));
        Assert.Equal(["4.<|eos|>", "6, I'm sure. 😀<|eos|>"], TrainedRuns(tok, ex));
        Assert.Equal(2, Enumerable.Range(0, ex.Length).Count(i => ex.Loss[i] && ex.Tokens[i] == ByteTokenizer.Eos));
        Assert.Equal(6, ex.Tokens.Count(t => t == ByteTokenizer.Eos)); // one per turn, only the assistant ones trained
    }

    [Fact]
    public void Instruction_WithTemplate_IsUserAndAssistantTurn()
    {
        var tok = new ByteTokenizer();
        var tpl = new ChatTemplate(ChatTemplates.ChatML);
        var ex = new ExampleEncoder(tok, tpl).Encode(DataSample.FromInstruction(1, "Translate", "chat", "Katze? No: cat"));
        Assert.Equal(tok.Encode("<|im_start|>user\nTranslate\n\nchat<|im_end|>\n<|im_start|>assistant\nKatze? No: cat<|im_end|>\n"), ex.Tokens);
        Assert.Equal(["Katze? No: cat<|im_end|>"], TrainedRuns(tok, ex));
        var noInput = new ExampleEncoder(tok, tpl).Encode(DataSample.FromInstruction(1, "Say hi", "", "hi"));
        Assert.StartsWith("<|im_start|>user\nSay hi<|im_end|>", tok.Decode(noInput.Tokens));
    }

    [Fact]
    public void Instruction_WithoutTemplate_UsesAlpaca_LossOnOutputAndEos()
    {
        var tok = new ByteTokenizer();
        var ex = new ExampleEncoder(tok, null).Encode(DataSample.FromInstruction(3, "Add", "1+1", "2"));
        string prompt = string.Format(ExampleEncoder.AlpacaPromptWithInput, "Add", "1+1");
        Assert.Equal(ByteTokenizer.Bos, ex.Tokens[0]);
        Assert.Equal(ByteTokenizer.Eos, ex.Tokens[^1]);
        Assert.Equal(prompt + "2", tok.Decode(ex.Tokens.AsSpan(1, ex.Length - 2)));
        Assert.Equal(["2<|eos|>"], TrainedRuns(tok, ex));
        Assert.Equal(2, ex.LossTokens);
    }

    [Fact]
    public void Text_EveryTokenTrained_SpecialTextStaysPlain()
    {
        var tok = new ByteTokenizer();
        var ex = new ExampleEncoder(tok, null).Encode(DataSample.FromText(1, "a<|eos|>"));
        Assert.Equal(1 + 8 + 1, ex.Length);
        Assert.False(ex.Loss[0]); // BOS is never a target
        Assert.All(ex.Loss.Skip(1), Assert.True);
        Assert.Equal(ByteTokenizer.Eos, ex.Tokens[^1]);
        Assert.Equal('<', ex.Tokens[2]);
    }

    [SkippableFact]
    public void Qwen_MultiTurnChat_MasksExactlyEveryAssistantTurn()
    {
        string dir = TestAssets.Require("tokenizers/qwen2.5-0.5b-instruct");
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        var tpl = ChatTemplate.Load(dir);
        var enc = new ExampleEncoder(tok, tpl);
        var ex = enc.Encode(DataSample.FromChat(1, MultiTurn));
        Assert.Equal(tpl.Encode(tok, MultiTurn), ex.Tokens);
        Assert.Equal(["4.<|im_end|>", "6, I'm sure. 😀<|im_end|>"], TrainedRuns(tok, ex));
        int imEnd = tok.SpecialTokens["<|im_end|>"];
        Assert.Equal(2, Enumerable.Range(0, ex.Length).Count(i => ex.Loss[i] && ex.Tokens[i] == imEnd));

        // Without a system message Qwen's template adds its default one: still only the assistant turn trains.
        var inst = enc.Encode(DataSample.FromInstruction(2, "Name a colour.", null, "Blue"));
        string rendered = tok.Decode(inst.Tokens);
        Assert.Contains("<|im_start|>system\n", rendered);
        Assert.Contains("<|im_start|>user\nName a colour.<|im_end|>", rendered);
        Assert.Equal(["Blue<|im_end|>"], TrainedRuns(tok, inst));
    }
}

public class ExampleEncoderRealDataTests
{
    [SkippableFact]
    public void Qwen_SelfInstructRows_TrainExactlyOnTheirOutputs()
    {
        string tplDir = TestAssets.Require("tokenizers/qwen2.5-0.5b-instruct");
        string path = TestAssets.Require("instruct/self_instruct_seed_tasks.jsonl");
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        var enc = new ExampleEncoder(tok, ChatTemplate.Load(tplDir));
        var read = JsonlReader.Read(File.ReadLines(path).Take(60), path, DataFormat.Auto, new EdgeTune.Text.Datasets.Internal.RejectionLog(5));
        Assert.Equal(DataFormat.Instruction, read.Format);
        foreach (var s in read.Samples)
        {
            var ex = enc.Encode(s);
            Assert.Equal([s.Output + "<|im_end|>"], ExampleEncoderTests.TrainedRuns(tok, ex));
        }
        Assert.Equal(0, enc.PiecewiseFallbacks);
    }

    [SkippableFact]
    public void Llama2c_Alpaca_AlignsWithDummyPrefix()
    {
        var tok = TestTokenizers.Get("stories260K/tok512.bin");
        var enc = new ExampleEncoder(tok, null);
        var ex = enc.Encode(DataSample.FromInstruction(1, "Tell a story.", null, "Once upon a time, Lily saw a cat."));
        Assert.Equal(0, enc.PiecewiseFallbacks);
        Assert.Equal(tok.BosId, ex.Tokens[0]);
        Assert.Equal(tok.EosId, ex.Tokens[^1]);
        int first = Array.IndexOf(ex.Loss, true);
        Assert.Equal("Once upon a time, Lily saw a cat.", tok.Decode(ex.Tokens.AsSpan(first), skipSpecial: true));
        Assert.EndsWith("### Response:\n", tok.Decode(ex.Tokens.AsSpan(0, first), skipSpecial: true));
        Assert.All(ex.Loss.Skip(first), Assert.True);
    }
}
