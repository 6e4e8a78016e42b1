using System.CommandLine;
using System.Text.Json;
using EdgeTune.Tests.Text;

namespace EdgeTune.Tests.Cli;

/// <summary><c>edgetune tokenize</c> against real tokenizers and Hugging Face tokenizers itself.</summary>
public class TokenizeCommandTests
{
    private static (int Code, string Out, string Err) Run(TextReader? stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = EdgeTune.Cli.Program.Run(args, new InvocationConfiguration { Output = output, Error = error }, stdin);
        return (code, output.ToString(), error.ToString());
    }

    private static (int[] Ids, string[] Tokens) Parse(string jsonLine)
    {
        using var doc = JsonDocument.Parse(jsonLine);
        Assert.Equal(2, doc.RootElement.EnumerateObject().Count());
        return (doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToArray());
    }

    /// <summary>The vocabulary of a tokenizer.json read straight from the file (token to id), added tokens included.</summary>
    private static Dictionary<int, string> Vocabulary(string tokenizerJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(tokenizerJson));
        var byId = new Dictionary<int, string>();
        foreach (var p in doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = p.Name;
        foreach (var a in doc.RootElement.GetProperty("added_tokens").EnumerateArray()) byId[a.GetProperty("id").GetInt32()] = a.GetProperty("content").GetString()!;
        return byId;
    }

    [SkippableTheory]
    [InlineData("tinyllama-1.1b-chat-v1.0")]
    [InlineData("mistral-7b-instruct-v0.3")]
    public void JsonIdsMatchHuggingFaceAndTokensAreTheVocabularyStrings(string model)
    {
        string path = TestAssets.Require($"tokenizers/{model}/tokenizer.json");
        string[] texts = ["Hello world", "<s>[INST] hi [/INST]", "Grüße 🚀 \"quoted\" \\ back", "  two  spaces"];
        var args = new List<string> { "tokenize", "--tokenizer", Path.GetDirectoryName(path)!, "--json" };
        foreach (string t in texts) { args.Add("--text"); args.Add(t); }
        var (code, stdout, stderr) = Run(null, args.ToArray());
        Assert.True(code == 0, stderr);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        var vocab = Vocabulary(path);
        using var hf = HfTokenizersComparisonTests.TryHf(path)!;
        for (int i = 0; i < texts.Length; i++)
        {
            var (ids, tokens) = Parse(lines[i]);
            Assert.Equal(hf.Encode(texts[i]).Select(u => (int)u), ids);
            Assert.Equal(ids.Select(id => vocab[id]), tokens);
        }
        // These Llama-style tokenizers put BOS (<s>, id 1) in front, as their post-processor does.
        Assert.Equal(1, Parse(lines[0]).Ids[0]);
        Assert.Equal("<s>", Parse(lines[0]).Tokens[0]);
    }

    [SkippableFact]
    public void PlainOutputReadsStdinLinesAndPrintsIdTabPiece()
    {
        string path = TestAssets.Require("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json");
        var vocab = Vocabulary(path);
        var (code, stdout, stderr) = Run(new StringReader("Hello world\nGood night\n"), "tokenize", "--tokenizer", path);
        Assert.True(code == 0, stderr);
        string[] blocks = stdout.ReplaceLineEndings("\n").TrimEnd('\n').Split("\n\n");
        Assert.Equal(2, blocks.Length);
        var first = blocks[0].Split('\n').Select(l => l.Split('\t')).ToList();
        Assert.All(first, f => Assert.Equal(2, f.Length));
        Assert.Equal(["<s>", "▁Hello", "▁world"], first.Select(f => f[1]));
        Assert.All(first, f => Assert.Equal(vocab[int.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture)], f[1]));
        Assert.Contains("▁night", blocks[1]);
    }

    [SkippableFact]
    public void Llama2cTokenizerPrintsBosAndPieces()
    {
        string tok = TestAssets.Require("stories260K/tok512.bin");
        var (code, stdout, stderr) = Run(null, "tokenize", "--tokenizer", tok, "--json", "--text", "Once upon a time");
        Assert.True(code == 0, stderr);
        var (ids, tokens) = Parse(stdout.Trim());
        Assert.Equal(ids.Length, tokens.Length);
        Assert.Equal(1, ids[0]); // llama2.c's run.c encodes with BOS
        Assert.Equal("Once upon a time", string.Concat(tokens.Skip(1)).Replace('▁', ' ').Trim());
    }
}
