using System.Text.Json;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// Gemma 3's tokenizer: SentencePiece BPE with byte fallback and NO dummy prefix (add_dummy_prefix=false, so a word
/// at the start of the text has no "▁"), &lt;pad&gt;=0, &lt;eos&gt;=1, &lt;bos&gt;=2, &lt;unk&gt;=3, add_bos_token=true,
/// &lt;start_of_turn&gt;/&lt;end_of_turn&gt; as special added tokens and runs of "\n" as non-special ones.
/// The real 262k-piece tokenizer.model (and tokenizer.json) are not in the assets, so the loading paths are checked
/// on a small synthetic model written here with Gemma's conventions, in both forms:
/// a SentencePiece ModelProto (tokenizer.model, read by Microsoft.ML.Tokenizers) and the tokenizer.json layout that
/// transformers' Gemma converter writes (Replace " "→"▁" normalizer, no Prepend, BPE with byte_fallback, BOS added
/// by the post-processor). The json form is compared with Hugging Face tokenizers itself; the model form's ids for
/// <see cref="Texts"/> (without tokenizer_config.json) were also confirmed with the sentencepiece library 0.1.97 when
/// this test was written.
/// Not verified against the real file: the exact piece ids, scores and merges of the 262k vocabulary, the exact
/// layout of the real tokenizer.json (written here after transformers' GemmaConverter), whether Microsoft.ML.Tokenizers
/// (still used to open tokenizer.model) accepts the real 262k model, and how the real model treats the "▁▁"..
/// whitespace pieces that tokenizer_config.json lists as added tokens with normalized=false (here they are ordinary
/// merges).
/// What is checked on real files: the token table and flags of Gemma 3's tokenizer_config.json.
/// </summary>
public class GemmaTokenizerTests
{
    private const int Normal = SentencePieceModelWriter.Normal, Unknown = SentencePieceModelWriter.Unknown, Control = SentencePieceModelWriter.Control,
        UserDefined = SentencePieceModelWriter.UserDefined, ByteType = SentencePieceModelWriter.ByteType;

    // id 0..11: Gemma's leading specials (same order for 0..3), then the chat markers and a few user-defined pieces
    private static readonly (string Piece, int Type, bool Special)[] Specials =
    [
        ("<pad>", Control, true), ("<eos>", Control, true), ("<bos>", Control, true), ("<unk>", Unknown, true),
        ("<mask>", UserDefined, false), ("<start_of_turn>", UserDefined, true), ("<end_of_turn>", UserDefined, true),
        ("\n", UserDefined, false), ("\n\n", UserDefined, false), ("\t", UserDefined, false), ("<b>", UserDefined, false), ("</b>", UserDefined, false),
    ];

    /// <summary>Merges in priority order; each merged piece has exactly one split into two pieces of the vocabulary
    /// (checked below), so SentencePiece's "any pair whose concatenation is a piece, best score first" and HF's
    /// "listed pairs by rank" are the same rule.</summary>
    private static readonly (string Left, string Right)[] Merges =
    [
        ("l", "l"), ("▁", "w"), ("o", "r"), ("H", "e"), ("He", "ll"), ("Hell", "o"), ("▁w", "or"), ("▁wor", "l"), ("▁worl", "d"),
        ("e", "r"), ("u", "s"), ("us", "er"), ("o", "d"), ("m", "od"), ("mod", "e"), ("mode", "l"), ("▁", "▁"), ("▁▁", "▁▁"),
        ("▁", "m"), ("▁", "model"), ("!", "!"), ("!!", "!!"), ("H", "i"), ("w", "i"), ("wi", "d"), ("wid", "e"),
    ];

    internal static readonly string[] Texts =
    [
        "Hello world", " Hello", "Hello  world", "Hello    world", "Hello     world", "\n", "\n\n\n", "Hello\nworld", "Hello\n\nworld\n",
        "user model", "<start_of_turn>user\nHello world<end_of_turn>\n<start_of_turn>model\n", "é", "日本", "🚀", "Hi!!!!", "!!!!!!",
        "<b>bold</b>", "a\tb", "<bos>Hello", "<eos>", "<pad><unk><mask>", "modeler", "", "   ", "worldwide", "Hello world, how are you?",
        "<start_of_turn>model\nHi!<end_of_turn>", "<start_of_turn", "x<end_of_turn>\n\n\n\ny", "\t\t", " \n ", "▁Hello",
    ];

    internal sealed record Vocab(List<(string Piece, float Score, int Type)> Pieces, Dictionary<string, int> Ids);

    internal static Vocab BuildVocab()
    {
        var pieces = Specials.Select(s => (s.Piece, 0f, s.Type)).ToList();
        for (int b = 0; b < 256; b++) pieces.Add(($"<0x{b:X2}>", 0f, ByteType));
        var chars = Merges.SelectMany(m => new[] { m.Left, m.Right }).Where(p => p.Length == 1).Distinct().ToList();
        for (int i = 0; i < chars.Count; i++) pieces.Add((chars[i], -1000f - i, Normal));
        for (int r = 0; r < Merges.Length; r++) pieces.Add((Merges[r].Left + Merges[r].Right, -r, Normal));
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Count; i++) Assert.True(ids.TryAdd(pieces[i].Piece, i), $"duplicate piece {pieces[i].Piece}");
        foreach (var (l, r) in Merges)
        {
            Assert.True(ids.ContainsKey(l) && ids.ContainsKey(r), $"merge {l} {r}: parts must be pieces");
            string m = l + r;
            int splits = Enumerable.Range(1, m.Length - 1).Count(k => ids.ContainsKey(m[..k]) && ids.ContainsKey(m[k..]));
            Assert.True(splits == 1, $"{m} has {splits} splits into vocabulary pieces; the test vocabulary needs exactly one");
        }
        return new Vocab(pieces, ids);
    }

    // ------------------------------------------------------------ file writers

    private static void WriteModelProto(string path, Vocab v) =>
        File.WriteAllBytes(path, SentencePieceModelWriter.Bpe(v.Pieces, byteFallback: true, unkId: 3, bosId: 2, eosId: 1, padId: 0,
            addDummyPrefix: false, removeExtraWhitespaces: false)); // Gemma: no dummy prefix, spaces kept

    private static void WriteTokenizerConfig(string path)
    {
        using var s = File.Create(path);
        using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteBoolean("add_bos_token", true);
        w.WriteBoolean("add_eos_token", false);
        w.WriteStartObject("added_tokens_decoder");
        for (int i = 0; i < Specials.Length; i++)
        {
            w.WriteStartObject(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteAddedFields(w, Specials[i].Piece, Specials[i].Special);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteString("bos_token", "<bos>");
        w.WriteString("eos_token", "<eos>");
        w.WriteString("pad_token", "<pad>");
        w.WriteString("unk_token", "<unk>");
        w.WriteString("tokenizer_class", "GemmaTokenizer");
        w.WriteEndObject();
    }

    private static void WriteAddedFields(Utf8JsonWriter w, string content, bool special)
    {
        w.WriteString("content", content);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("normalized", false);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("special", special);
    }

    /// <summary>The tokenizer.json layout of transformers' Gemma converter (GemmaConverter: no dummy prefix).</summary>
    private static void WriteTokenizerJson(string path, Vocab v)
    {
        using var s = File.Create(path);
        using var w = new Utf8JsonWriter(s);
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        for (int i = 0; i < Specials.Length; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", i);
            WriteAddedFields(w, Specials[i].Piece, Specials[i].Special);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("normalizer");
        w.WriteString("type", "Replace");
        w.WriteStartObject("pattern");
        w.WriteString("String", " ");
        w.WriteEndObject();
        w.WriteString("content", "▁");
        w.WriteEndObject();
        // GemmaConverter's Split(" ", merged_with_previous) runs after the normalizer has turned every space into "▁",
        // so it never splits; HF below confirms that it changes nothing.
        w.WritePropertyName("pre_tokenizer");
        w.WriteRawValue("""{"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}""");
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        w.WriteRawValue("""{"SpecialToken": {"id": "<bos>", "type_id": 0}}""");
        w.WriteRawValue("""{"Sequence": {"id": "A", "type_id": 0}}""");
        w.WriteEndArray();
        w.WriteStartArray("pair");
        w.WriteRawValue("""{"SpecialToken": {"id": "<bos>", "type_id": 0}}""");
        w.WriteRawValue("""{"Sequence": {"id": "A", "type_id": 0}}""");
        w.WriteRawValue("""{"SpecialToken": {"id": "<bos>", "type_id": 1}}""");
        w.WriteRawValue("""{"Sequence": {"id": "B", "type_id": 1}}""");
        w.WriteEndArray();
        w.WritePropertyName("special_tokens");
        w.WriteRawValue("""{"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}""");
        w.WriteEndObject();
        w.WritePropertyName("decoder");
        w.WriteRawValue("""{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}""");
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteString("unk_token", "<unk>");
        w.WriteNull("continuing_subword_prefix");
        w.WriteNull("end_of_word_suffix");
        w.WriteBoolean("fuse_unk", true);
        w.WriteBoolean("byte_fallback", true);
        w.WriteBoolean("ignore_merges", false);
        w.WriteStartObject("vocab");
        for (int i = 0; i < v.Pieces.Count; i++) w.WriteNumber(v.Pieces[i].Piece, i);
        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (l, r) in Merges)
        {
            w.WriteStartArray();
            w.WriteStringValue(l);
            w.WriteStringValue(r);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>A folder with the synthetic tokenizer in the given form(s) plus tokenizer_config.json.</summary>
    private sealed class SyntheticFolder : IDisposable
    {
        public readonly string Dir = Directory.CreateTempSubdirectory("edgetune-gemma-").FullName;
        public SyntheticFolder(Vocab v, bool model, bool json)
        {
            if (model) WriteModelProto(Path.Combine(Dir, "tokenizer.model"), v);
            if (json) WriteTokenizerJson(Path.Combine(Dir, "tokenizer.json"), v);
            WriteTokenizerConfig(Path.Combine(Dir, "tokenizer_config.json"));
        }
        public void Dispose() => Directory.Delete(Dir, true);
    }

    // ------------------------------------------------------------ tests

    [Fact]
    public void TokenizerModel_GemmaConventions_BosEosPad_NoDummyPrefix_ByteFallback()
    {
        var v = BuildVocab();
        using var folder = new SyntheticFolder(v, model: true, json: false);
        var tok = TokenizerLoader.Load(folder.Dir);
        var sp = Assert.IsType<SentencePieceModelTokenizer>(tok);
        Assert.False(sp.AddDummyPrefix);
        Assert.True(sp.UsesSentencePieceBpePort);
        Assert.Equal(v.Pieces.Count, tok.VocabSize);
        Assert.Equal((0, 1, 2, 3), (tok.PadId, tok.EosId, tok.BosId, tok.UnkId));
        Assert.True(tok.AddBosByDefault);
        int Id(string p) => v.Ids[p];

        // No dummy prefix: the first word has no "▁", the second carries its space.
        Assert.Equal([2, Id("Hello"), Id("▁world")], tok.Encode("Hello world", addBos: true));
        Assert.Equal([Id("▁"), Id("Hello")], tok.Encode(" Hello"));
        // Decoding keeps a leading space (nothing was prepended that would have to be dropped).
        Assert.Equal(" Hello", tok.Decode([Id("▁"), Id("Hello")]));
        Assert.Equal("Hello world", tok.Decode([2, Id("Hello"), Id("▁world")], skipSpecial: true));
        // Whitespace runs merge into "▁▁" / "▁▁▁▁".
        Assert.Equal([Id("Hello"), Id("▁▁▁▁"), Id("▁world")], tok.Encode("Hello     world"));
        // Byte fallback: é = C3 A9 → <0xC3><0xA9> (byte pieces sit at 12 + byte value here).
        Assert.Equal([12 + 0xC3, 12 + 0xA9], tok.Encode("é"));
        Assert.Equal("é", tok.Decode(tok.Encode("é")));
        // Chat markers and newline runs are added tokens (longest match: "\n\n\n" = "\n\n" + "\n").
        Assert.Equal([Id("<start_of_turn>"), Id("user"), Id("\n"), Id("Hi"), Id("<end_of_turn>"), Id("\n\n"), Id("\n")],
            tok.Encode("<start_of_turn>user\nHi<end_of_turn>\n\n\n"));
        Assert.True(tok.IsSpecial(Id("<start_of_turn>")));
        Assert.False(tok.IsSpecial(Id("\n")));
        Assert.Equal("user\nHi\n", tok.Decode(tok.Encode("<start_of_turn>user\nHi<end_of_turn>\n"), skipSpecial: true));
    }

    [SkippableFact]
    public void TokenizerJsonAndModel_MatchHuggingFace_OnGemmaLayout()
    {
        var v = BuildVocab();
        using var jsonFolder = new SyntheticFolder(v, model: false, json: true);
        using var modelFolder = new SyntheticFolder(v, model: true, json: false);
        using var hf = HfTokenizersComparisonTests.TryHf(Path.Combine(jsonFolder.Dir, "tokenizer.json"))!;
        var fromJson = TokenizerLoader.Load(jsonFolder.Dir);
        var fromModel = TokenizerLoader.Load(modelFolder.Dir);
        var bpe = Assert.IsType<SentencePieceBpeTokenizer>(fromJson);
        Assert.Equal(PrependScheme.Never, bpe.Prepend);
        Assert.True(fromJson.AddBosByDefault);
        Assert.Equal((0, 1, 2, 3), (fromJson.PadId, fromJson.EosId, fromJson.BosId, fromJson.UnkId));
        var failures = new List<string>();
        foreach (string text in Texts)
        {
            uint[] hfIds = hf.Encode(text);
            int[] expected = hfIds.Select(u => (int)u).ToArray();
            int[] json = fromJson.Encode(text, addBos: fromJson.AddBosByDefault);
            int[] model = fromModel.Encode(text, addBos: fromModel.AddBosByDefault);
            if (!json.SequenceEqual(expected) || !model.SequenceEqual(expected))
                failures.Add($"{FamilyTokenizerTests.Escape(text)}: HF [{string.Join(' ', expected)}] json [{string.Join(' ', json)}] model [{string.Join(' ', model)}]");
            else if (fromJson.Decode(json, skipSpecial: true) != hf.Decode(hfIds) || fromModel.Decode(model, skipSpecial: true) != hf.Decode(hfIds))
                failures.Add($"{FamilyTokenizerTests.Escape(text)}: decode HF {FamilyTokenizerTests.Escape(hf.Decode(hfIds))} json " +
                    $"{FamilyTokenizerTests.Escape(fromJson.Decode(json, skipSpecial: true))} model {FamilyTokenizerTests.Escape(fromModel.Decode(model, skipSpecial: true))}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{Texts.Length} differ:\n" + string.Join("\n", failures));
    }

    /// <summary>The real Gemma 3 tokenizer_config.json: 6,415 added tokens (ids 0..262144), their special flags, and
    /// the splitter on that table (markers, newline runs, HTML tags and the &lt;unusedN&gt; block).</summary>
    [SkippableFact]
    public void RealGemma3Config_AddedTokenTable_SplitsMarkersNewlinesAndTags()
    {
        string dir = TestAssets.Require("tokenizers/gemma-3-270m-it");
        var config = TokenizerConfig.Load(Path.Combine(dir, "tokenizer_config.json"));
        Assert.Equal("GemmaTokenizer", config.TokenizerClass);
        Assert.Equal(("<bos>", "<eos>", "<pad>", "<unk>"), (config.BosToken, config.EosToken, config.PadToken, config.UnkToken));
        Assert.True(config.AddBosToken);
        Assert.False(config.AddEosToken);
        Assert.Equal(6415, config.AddedTokens.Count);
        var byId = config.AddedTokens.ToDictionary(t => t.Id);
        Assert.Equal(("<pad>", "<eos>", "<bos>", "<unk>"), (byId[0].Content, byId[1].Content, byId[2].Content, byId[3].Content));
        Assert.Equal(("<start_of_turn>", true), (byId[105].Content, byId[105].Special));
        Assert.Equal(("<end_of_turn>", true), (byId[106].Content, byId[106].Special));
        Assert.Equal(("\n", false), (byId[107].Content, byId[107].Special));
        Assert.Equal(("<image_soft_token>", true), (byId[262144].Content, byId[262144].Special));

        // The synthetic pieces stand in for the 262k vocabulary; only the added-token ids come from the real file.
        var v = BuildVocab();
        var tok = new SentencePieceBpeTokenizer(v.Ids, Merges, config.AddedTokens, PrependScheme.Never, byteFallback: true,
            bosId: 2, eosId: 1, padId: 0, unkId: 3, addBosByDefault: true);
        Assert.Equal(262145, tok.VocabSize);
        int[] ids = tok.Encode("<start_of_turn>user\n<b>Hi</b>\n\n\n<unused12><end_of_turn>\n", addBos: true);
        Assert.Equal([2, 105], ids[..2]);
        Assert.Equal([106, 107], ids[^2..]);
        Assert.Contains(200, ids); // <b>
        Assert.Contains(209, ids); // </b>
        Assert.Contains(109, ids); // "\n\n\n" as one token
        Assert.Contains(18, ids); // <unused12>
        Assert.Equal("user\n<b>Hi</b>\n\n\n<unused12>\n", tok.Decode(ids, skipSpecial: true));
        // parseSpecial=false: the special turn markers are text; non-special added tokens still split.
        Assert.DoesNotContain(105, tok.Encode("<start_of_turn>\n", parseSpecial: false));
        Assert.Contains(107, tok.Encode("<start_of_turn>\n", parseSpecial: false));
    }
}
