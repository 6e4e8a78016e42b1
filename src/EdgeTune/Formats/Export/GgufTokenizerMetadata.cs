using EdgeTune.Text;

namespace EdgeTune.Formats.Export;

/// <summary>
/// The <c>tokenizer.ggml.*</c> metadata llama.cpp reads, built from one of our tokenizers:
/// SentencePiece-style vocabularies (llama2.c tokenizer.bin, tokenizer.json with byte fallback,
/// tokenizer.model) as model "llama" (pieces with "▁" for spaces, scores, token types), byte-level BPE
/// as model "gpt2" (tokens, merges, token types).
/// </summary>
public static class GgufTokenizerMetadata
{
    public const char SpaceMarker = SentencePieceBpeTokenizer.SpaceMarker;

    /// <summary>The tokenizer keys for <paramref name="tokenizer"/>; <paramref name="vocabSize"/> (the model's) pads or checks the list.</summary>
    /// <exception cref="NotSupportedException">For tokenizer types with no GGUF mapping here.</exception>
    /// <exception cref="ArgumentException">When the tokenizer has more ids than the model's vocabulary.</exception>
    public static List<KeyValuePair<string, GgufValue>> For(ITokenizer tokenizer, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.VocabSize > vocabSize)
            throw new ArgumentException($"GgufTokenizerMetadata: the tokenizer has {tokenizer.VocabSize} ids but the model's vocabulary is {vocabSize}");
        return tokenizer switch
        {
            Llama2cTokenizer l => SentencePiece(l, vocabSize, Llama2cPiece, id => l.Score(id)),
            SentencePieceBpeTokenizer s => SentencePiece(s, vocabSize, (t, id) => t.IdToToken(id), id => s.Score(id)),
            // tokenizer.model scores are not exposed by Microsoft.ML.Tokenizers; BPE models store pieces in
            // merge order, so −id ranks them the same way (an approximation for Unigram models).
            SentencePieceModelTokenizer m => SentencePiece(m, vocabSize, (t, id) => t.IdToToken(id), id => -(float)id),
            ByteLevelBpeTokenizer b => ByteLevel(b, vocabSize),
            _ => throw new NotSupportedException($"GgufTokenizerMetadata: no GGUF tokenizer mapping for {tokenizer.GetType().Name}"),
        };
    }

    /// <summary>
    /// A llama2.c piece in SentencePiece form: BOS/EOS ("\n&lt;s&gt;\n", "\n&lt;/s&gt;\n") become "&lt;s&gt;"/"&lt;/s&gt;",
    /// spaces become "▁"; byte tokens already read "&lt;0xNN&gt;".
    /// </summary>
    public static string Llama2cPiece(ITokenizer t, int id)
    {
        if (id == t.BosId) return "<s>";
        if (id == t.EosId) return "</s>";
        if (id == t.UnkId) return "<unk>";
        return (t.IdToToken(id) ?? $"[PAD{id}]").Replace(' ', SpaceMarker);
    }

    private static List<KeyValuePair<string, GgufValue>> SentencePiece(ITokenizer t, int vocabSize,
        Func<ITokenizer, int, string?> piece, Func<int, float> score)
    {
        var tokens = new string[vocabSize];
        var scores = new float[vocabSize];
        var types = new int[vocabSize];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int id = 0; id < vocabSize; id++)
        {
            if (id >= t.VocabSize || piece(t, id) is not { } p)
            {
                tokens[id] = $"[PAD{id}]"; // ids the model has but the tokenizer lacks (llama.cpp's converter does the same)
                scores[id] = -1000f;
                types[id] = (int)GgufTokenType.Unused;
                continue;
            }
            tokens[id] = p;
            scores[id] = score(id);
            types[id] = (int)TypeOf(t, id, p);
            if (!seen.Add(p)) types[id] = (int)GgufTokenType.Unused; // a duplicate piece must not shadow the first
        }
        var m = Common("llama");
        m.Add(new("tokenizer.ggml.tokens", tokens));
        m.Add(new("tokenizer.ggml.scores", scores));
        m.Add(new("tokenizer.ggml.token_type", types));
        m.AddRange(Ids(t));
        m.Add(new("tokenizer.ggml.add_space_prefix", true));
        return m;
    }

    private static List<KeyValuePair<string, GgufValue>> ByteLevel(ByteLevelBpeTokenizer t, int vocabSize)
    {
        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        for (int id = 0; id < vocabSize; id++)
        {
            string? p = id < t.VocabSize ? t.IdToToken(id) : null;
            if (p is null)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = (int)GgufTokenType.Unused;
                continue;
            }
            tokens[id] = p;
            types[id] = (int)(t.SpecialTokens.TryGetValue(p, out int sid) && sid == id
                ? (t.IsSpecial(id) ? GgufTokenType.Control : GgufTokenType.UserDefined)
                : GgufTokenType.Normal);
        }
        var m = Common("gpt2");
        // The name GgufTokenizer reads back to the same regex; a regex no llama.cpp name stands for is written as GPT-2's.
        m.Add(new("tokenizer.ggml.pre", GgufTokenizer.PreTokenizerNameOf(t) ?? "gpt-2"));
        m.Add(new("tokenizer.ggml.tokens", tokens));
        m.Add(new("tokenizer.ggml.token_type", types));
        m.Add(new("tokenizer.ggml.merges", t.Merges.ToArray()));
        m.AddRange(Ids(t));
        return m;
    }

    private static GgufTokenType TypeOf(ITokenizer t, int id, string piece)
    {
        if (id == t.UnkId) return GgufTokenType.Unknown;
        if (id == t.BosId || id == t.EosId || id == t.PadId) return GgufTokenType.Control;
        if (t.SpecialTokens.TryGetValue(piece, out int sid) && sid == id)
            return t.IsSpecial(id) ? GgufTokenType.Control : GgufTokenType.UserDefined;
        if (IsBytePiece(piece)) return GgufTokenType.Byte;
        return t.IsSpecial(id) ? GgufTokenType.Control : GgufTokenType.Normal;
    }

    /// <summary>True for "&lt;0xNN&gt;" with two upper-case hex digits.</summary>
    public static bool IsBytePiece(string p) =>
        p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && Uri.IsHexDigit(p[3]) && Uri.IsHexDigit(p[4]);

    private static List<KeyValuePair<string, GgufValue>> Common(string model) =>
    [
        new("tokenizer.ggml.model", model),
    ];

    private static IEnumerable<KeyValuePair<string, GgufValue>> Ids(ITokenizer t)
    {
        if (t.BosId is int bos) yield return new("tokenizer.ggml.bos_token_id", (uint)bos);
        if (t.EosId is int eos) yield return new("tokenizer.ggml.eos_token_id", (uint)eos);
        if (t.UnkId is int unk) yield return new("tokenizer.ggml.unknown_token_id", (uint)unk);
        if (t.PadId is int pad) yield return new("tokenizer.ggml.padding_token_id", (uint)pad);
        yield return new("tokenizer.ggml.add_bos_token", t.AddBosByDefault);
        yield return new("tokenizer.ggml.add_eos_token", false);
    }
}
