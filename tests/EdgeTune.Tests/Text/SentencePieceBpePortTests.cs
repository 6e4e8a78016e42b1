using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// Our SentencePiece BPE port on a small model written here that exercises what Llama/Gemma-sized models rarely show
/// in a few strings: dummy prefix with extra-whitespace removal, user-defined pieces taken whole (no tokenizer_config,
/// so the model's own matching is used), an UNUSED piece that may be merged through but is split back when it is
/// final, a piece reached through a character that is itself no piece, equal-score ties, and unknown characters
/// without byte fallback (a run gives one &lt;unk&gt;). Expected ids were produced by the sentencepiece library
/// 0.1.97 (spm_encode) on the same model file.
/// </summary>
public class SentencePieceBpePortTests
{
    internal static readonly (string Piece, float Score, int Type)[] EdgePieces =
    [
        ("<unk>", 0, SentencePieceModelWriter.Unknown), ("<s>", 0, SentencePieceModelWriter.Control), ("</s>", 0, SentencePieceModelWriter.Control),
        ("<sep>", 0, SentencePieceModelWriter.UserDefined), ("@@", 0, SentencePieceModelWriter.UserDefined),
        ("▁", -100, SentencePieceModelWriter.Normal), ("a", -101, SentencePieceModelWriter.Normal), ("b", -102, SentencePieceModelWriter.Normal),
        ("c", -103, SentencePieceModelWriter.Normal),
        ("ab", -1, SentencePieceModelWriter.Unused), ("abc", -2, SentencePieceModelWriter.Normal), ("▁c", -3, SentencePieceModelWriter.Normal),
        ("▁b", -4, SentencePieceModelWriter.Normal), ("cc", -5, SentencePieceModelWriter.Normal), ("xa", -6, SentencePieceModelWriter.Normal),
        ("▁abc", -7, SentencePieceModelWriter.Normal),
    ];

    internal static byte[] EdgeModel() => SentencePieceModelWriter.Bpe(EdgePieces, byteFallback: false, unkId: 0, bosId: 1, eosId: 2, padId: -1,
        addDummyPrefix: true, removeExtraWhitespaces: true);

    /// <summary>(text, ids) as sentencepiece 0.1.97 encodes them with the model above; pieces in the comments.</summary>
    private static readonly (string Text, int[] Ids)[] EdgeCases =
    [
        ("ab", [5, 6, 7]), // ▁ a b: "ab" is UNUSED, so the final "ab" is split back
        ("abc", [15]), // ▁abc: reached through the unused "ab"
        ("c", [11]), // ▁c
        ("a b c", [5, 6, 12, 11]), // ▁ a ▁b ▁c
        ("  a   b  ", [5, 6, 12]), // ▁ a ▁b: leading, repeated and trailing spaces removed
        ("a<sep>b", [5, 6, 3, 7]), // ▁ a <sep> b: user-defined piece taken whole
        ("<sep><sep>", [5, 3, 3]),
        ("@@@", [5, 4, 0]), // ▁ @@ <unk>
        ("cccc", [11, 13, 8]), // ▁c cc c: equal-score "cc" pairs merge leftmost first
        ("ccc", [11, 13]),
        ("ccccc", [11, 13, 13]),
        ("xa", [5, 14]), // ▁ xa: "x" is no piece but "xa" is
        ("x", [5, 0]), // ▁ <unk>
        ("xyz", [5, 0]), // a run of unknowns is one <unk>
        ("ax yz", [5, 6, 0, 5, 0]),
        ("abcab", [15, 6, 7]),
        ("", []),
        ("   ", []),
        ("<s>", [5, 0]), // control pieces are not matched in text
        ("a\tb", [5, 6, 0, 7]),
        ("b c", [12, 11]),
        ("abab", [5, 6, 7, 6, 7]),
        ("a@@b", [5, 6, 4, 7]),
        ("<sep> abc", [5, 3, 15]),
    ];

    [Fact]
    public void EdgeModel_MatchesSentencePiece()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-spm-").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer.model");
            File.WriteAllBytes(path, EdgeModel());
            var tok = Assert.IsType<SentencePieceModelTokenizer>(TokenizerLoader.Load(dir)); // no tokenizer_config.json: no added tokens
            Assert.True(tok.UsesSentencePieceBpePort);
            Assert.True(tok.AddDummyPrefix);
            Assert.Equal((1, 2, 0), (tok.BosId, tok.EosId, tok.UnkId));
            var failures = EdgeCases.Where(c => !tok.Encode(c.Text).SequenceEqual(c.Ids))
                .Select(c => $"{FamilyTokenizerTests.Escape(c.Text)}: expected [{string.Join(' ', c.Ids)}] got [{string.Join(' ', tok.Encode(c.Text))}]").ToList();
            Assert.True(failures.Count == 0, string.Join("\n", failures));
            Assert.Equal("abc ab", tok.Decode([15, 5, 6, 7])); // leading dummy-prefix space dropped, the lone "▁" kept
            Assert.Equal([1, 15, 2], tok.Encode("abc", addBos: true, addEos: true));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MalformedModel_NamesFileAndField()
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-spm-bad-").FullName;
        try
        {
            string path = Path.Combine(dir, "tokenizer.model");
            byte[] good = EdgeModel();
            File.WriteAllBytes(path, good[..(good.Length / 2)]);
            var e = Assert.Throws<InvalidDataException>(() => SentencePieceModelTokenizer.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("SentencePiece", e.Message);
            File.WriteAllBytes(path, [0x12, 0x00]); // only an empty trainer_spec
            e = Assert.Throws<InvalidDataException>(() => SentencePieceModelTokenizer.Load(path));
            Assert.Contains("no pieces", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>The real Llama-2 vocabulary (TinyLlama) through tokenizer.model (our port) and tokenizer.json
    /// (checked against HF elsewhere) on several hundred human-written instructions and answers.</summary>
    [SkippableFact]
    public void TinyLlama_ModelAndJson_AgreeOnInstructCorpus()
    {
        var model = TestTokenizers.Get("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.model");
        var json = TestTokenizers.Get("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json");
        var texts = new List<string>();
        foreach (string f in Directory.GetFiles(TestAssets.Require("instruct"), "*.jsonl").Order(StringComparer.Ordinal))
            foreach (string line in File.ReadLines(f))
            {
                using var d = System.Text.Json.JsonDocument.Parse(line);
                texts.Add(d.RootElement.GetProperty("instruction").GetString()!);
                foreach (var inst in d.RootElement.GetProperty("instances").EnumerateArray())
                    texts.Add(inst.GetProperty("input").GetString() + "\n" + inst.GetProperty("output").GetString());
            }
        Assert.True(texts.Count > 800);
        var failures = texts.Where(t => !model.Encode(t).SequenceEqual(json.Encode(t))).Take(5).Select(FamilyTokenizerTests.Escape).ToList();
        Assert.True(failures.Count == 0, "model and json differ on:\n" + string.Join("\n", failures));
    }
}
