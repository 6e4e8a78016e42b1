using EdgeTune.Text;

namespace EdgeTune.Formats;

/// <summary>The tokenizer a GGUF file carries in its <c>tokenizer.*</c> metadata, with the settings that came with it.</summary>
/// <param name="Tokenizer">The tokenizer built from the token list (and scores or merges).</param>
/// <param name="Model"><c>tokenizer.ggml.model</c>: "llama" (SentencePiece) or "gpt2" (byte-level BPE).</param>
/// <param name="PreTokenizer"><c>tokenizer.ggml.pre</c> as written (null when absent); only byte-level BPE uses it.</param>
/// <param name="AddBosToken">Whether a prompt starts with BOS (<c>tokenizer.ggml.add_bos_token</c>).</param>
/// <param name="AddEosToken">Whether an encoded text ends with EOS (<c>tokenizer.ggml.add_eos_token</c>).</param>
/// <param name="ChatTemplate"><c>tokenizer.chat_template</c>, with the BOS/EOS texts of this vocabulary; null when absent.</param>
public sealed record GgufTokenizerInfo(ITokenizer Tokenizer, string Model, string? PreTokenizer, bool AddBosToken, bool AddEosToken,
    ChatTemplate? ChatTemplate);

/// <summary>
/// Reads the tokenizer that llama.cpp's converters embed in a GGUF file, so that a <c>.gguf</c> model needs no separate
/// tokenizer file. Two vocabulary kinds are understood:
/// <list type="bullet">
/// <item><c>tokenizer.ggml.model = "llama"</c>: SentencePiece BPE from <c>tokens</c> and <c>scores</c> (merging by score,
/// <see cref="SentencePieceBpeTokenizer.FromScores"/>), "▁" for spaces, <c>&lt;0xNN&gt;</c> byte fallback,
/// <c>add_space_prefix</c> (default true).</item>
/// <item><c>tokenizer.ggml.model = "gpt2"</c>: byte-level BPE from <c>tokens</c> and <c>merges</c>, with the pre-tokenizer
/// regex named by <c>tokenizer.ggml.pre</c> (<see cref="PreTokenizerNames"/>).</item>
/// </list>
/// <c>tokenizer.ggml.token_type</c> (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) makes unknown and
/// control tokens special added tokens and user-defined ones plain added tokens (matched in the text even when specials are not
/// parsed). BOS/EOS/UNK/PAD come from the <c>*_token_id</c> keys, where -1 (also as the UInt32 0xFFFFFFFF) or absence means none.
/// Keys this reader does not know are ignored.
/// </summary>
public static class GgufTokenizer
{
    public const string ModelKey = "tokenizer.ggml.model";
    public const string PreKey = "tokenizer.ggml.pre";
    public const string TokensKey = "tokenizer.ggml.tokens";
    public const string ScoresKey = "tokenizer.ggml.scores";
    public const string TokenTypeKey = "tokenizer.ggml.token_type";
    public const string MergesKey = "tokenizer.ggml.merges";
    public const string BosKey = "tokenizer.ggml.bos_token_id";
    public const string EosKey = "tokenizer.ggml.eos_token_id";
    public const string UnknownKey = "tokenizer.ggml.unknown_token_id";
    public const string PaddingKey = "tokenizer.ggml.padding_token_id";
    public const string AddBosKey = "tokenizer.ggml.add_bos_token";
    public const string AddEosKey = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefixKey = "tokenizer.ggml.add_space_prefix";
    public const string ChatTemplateKey = "tokenizer.chat_template";

    // llama.cpp's token attribute codes in tokenizer.ggml.token_type.
    private const int TypeNormal = 1, TypeUnknown = 2, TypeControl = 3, TypeUserDefined = 4, TypeUnused = 5, TypeByte = 6;

    private sealed record PreTokenizer(string Pattern, bool Nfc = false, bool IgnoreMerges = false, bool AddBos = false);

    // llama.cpp's pre-tokenizer names (llama-vocab.cpp) and the split each stands for. "default" is what llama.cpp falls
    // back to for vocabularies converted without a name: it is read here as GPT-2's regex.
    private static readonly Dictionary<string, PreTokenizer> s_pre = new(StringComparer.Ordinal)
    {
        ["default"] = new(ByteLevelBpeTokenizer.Gpt2Pattern),
        ["gpt-2"] = new(ByteLevelBpeTokenizer.Gpt2Pattern),
        ["llama-bpe"] = new(ByteLevelBpeTokenizer.Llama3Pattern, IgnoreMerges: true, AddBos: true),
        ["llama3"] = new(ByteLevelBpeTokenizer.Llama3Pattern, IgnoreMerges: true, AddBos: true),
        ["llama-v3"] = new(ByteLevelBpeTokenizer.Llama3Pattern, IgnoreMerges: true, AddBos: true),
        ["smaug-bpe"] = new(ByteLevelBpeTokenizer.Llama3Pattern),
        ["qwen2"] = new(ByteLevelBpeTokenizer.Qwen2Pattern, Nfc: true),
        ["smollm"] = new(ByteLevelBpeTokenizer.SmolLMPattern),
    };

    /// <summary>The <c>tokenizer.ggml.pre</c> values a "gpt2" vocabulary may name.</summary>
    public static IReadOnlyCollection<string> PreTokenizerNames => s_pre.Keys;

    /// <summary>True when the file names a tokenizer model (<c>tokenizer.ggml.model</c> other than "none"/"no_vocab").</summary>
    public static bool HasTokenizer(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return file.Metadata.TryGetValue(ModelKey, out var v) && v.Type == GgufValueType.String && v.AsString() is not ("none" or "no_vocab");
    }

    /// <summary>Opens a GGUF file (a model or a vocab-only file) and reads its tokenizer.</summary>
    /// <exception cref="CheckpointFormatException">The file has no tokenizer, or its tokenizer metadata is malformed.</exception>
    /// <exception cref="NotSupportedException">A tokenizer model or pre-tokenizer this reader does not implement.</exception>
    public static GgufTokenizerInfo Read(string path)
    {
        using var file = GgufFile.Open(path);
        return Read(file) ?? throw new CheckpointFormatException(path, $"no tokenizer in this GGUF file (metadata '{ModelKey}' is missing or 'none')");
    }

    /// <summary>The tokenizer of an opened GGUF file, or null when it has none (<see cref="HasTokenizer"/>).</summary>
    /// <exception cref="CheckpointFormatException">Malformed tokenizer metadata (the message names the file and key).</exception>
    /// <exception cref="NotSupportedException">A tokenizer model or pre-tokenizer this reader does not implement.</exception>
    public static GgufTokenizerInfo? Read(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!HasTokenizer(file))
        {
            if (file.Metadata.TryGetValue(ModelKey, out var bad) && bad.Type != GgufValueType.String)
                throw Bad(file, ModelKey, $"expected a string, found {bad.Describe()}");
            return null;
        }
        string model = file.GetMetadata(ModelKey).AsString();
        if (model is not ("llama" or "gpt2"))
            throw new NotSupportedException(
                $"{file.Source}: metadata '{ModelKey}' = '{model}' is not a tokenizer EdgeTune can run (supported: 'llama' = SentencePiece BPE, " +
                "'gpt2' = byte-level BPE); pass the model's tokenizer.json or tokenizer.model with --tokenizer");

        string[] tokens = StringArray(file, TokensKey) ?? throw Bad(file, TokensKey, "is missing: the vocabulary needs its token list");
        if (tokens.Length == 0) throw Bad(file, TokensKey, "is empty");
        int[]? typeList = IntArray(file, TokenTypeKey, tokens.Length);
        int[] types = typeList ?? Enumerable.Repeat(TypeNormal, tokens.Length).ToArray();
        int? bos = Id(file, BosKey, tokens.Length), eos = Id(file, EosKey, tokens.Length);
        int? unk = Id(file, UnknownKey, tokens.Length), pad = Id(file, PaddingKey, tokens.Length);
        if (typeList is null) // without token types, at least BOS/EOS/UNK are control tokens
        {
            if (unk is int u) types[u] = TypeUnknown;
            if (bos is int b) types[b] = TypeControl;
            if (eos is int e) types[e] = TypeControl;
        }
        string? preName = OptionalString(file, PreKey);
        bool addEos = OptionalBool(file, AddEosKey) ?? false;

        ITokenizer tokenizer;
        bool addBos;
        var added = AddedTokens(tokens, types);
        if (model == "llama")
        {
            float[] scores = FloatArray(file, ScoresKey, tokens.Length)
                ?? throw Bad(file, ScoresKey, "is missing: a 'llama' (SentencePiece) vocabulary needs a score per token");
            addBos = OptionalBool(file, AddBosKey) ?? true;
            bool spacePrefix = OptionalBool(file, AddSpacePrefixKey) ?? true;
            bool hasBytes = types.Contains(TypeByte) || tokens.Any(IsBytePiece);
            tokenizer = SentencePieceBpeTokenizer.FromScores(tokens, scores, added,
                spacePrefix ? PrependScheme.Always : PrependScheme.Never, byteFallback: hasBytes, bos, eos, pad, unk, addBos);
        }
        else
        {
            string name = preName ?? "default";
            if (!s_pre.TryGetValue(name, out var pre))
                throw new NotSupportedException(
                    $"{file.Source}: metadata '{PreKey}' = '{name}' names a pre-tokenizer EdgeTune does not know " +
                    $"(known: {string.Join(", ", s_pre.Keys.Order(StringComparer.Ordinal))}); pass the model's tokenizer.json with --tokenizer");
            string[] merges = StringArray(file, MergesKey) ?? throw Bad(file, MergesKey, "is missing: a 'gpt2' (byte-level BPE) vocabulary needs its merges");
            for (int i = 0; i < merges.Length; i++)
            {
                string m = merges[i];
                int space = m.Length < 3 ? -1 : m.IndexOf(' ', 1);
                if (space < 0 || space == m.Length - 1) throw Bad(file, MergesKey, $"entry {i} '{m}' is not 'left right'");
            }
            var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int id = 0; id < tokens.Length; id++)
                if (types[id] != TypeUnused) vocab.TryAdd(tokens[id], id);
            addBos = OptionalBool(file, AddBosKey) ?? pre.AddBos;
            tokenizer = new ByteLevelBpeTokenizer(vocab, merges, pre.Pattern, added, pre.Nfc, addPrefixSpace: false,
                bos, eos, pad, unk, addBos, pre.IgnoreMerges);
        }

        ChatTemplate? template = null;
        if (OptionalString(file, ChatTemplateKey) is { } source)
        {
            try
            {
                template = new ChatTemplate(source, bos is int b ? tokens[b] : null, eos is int e ? tokens[e] : null);
            }
            catch (ChatTemplateException ex)
            {
                throw new CheckpointFormatException(file.Source, $"metadata '{ChatTemplateKey}' is not a template EdgeTune can run: {ex.Message}", inner: ex);
            }
        }
        return new GgufTokenizerInfo(tokenizer, model, preName, addBos, addEos, template);
    }

    /// <summary>The <c>tokenizer.ggml.pre</c> name for a byte-level tokenizer's pre-tokenizer regex, or null when none of the
    /// known names stands for it.</summary>
    public static string? PreTokenizerNameOf(ByteLevelBpeTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.Pattern switch
        {
            ByteLevelBpeTokenizer.Gpt2Pattern => "gpt-2",
            ByteLevelBpeTokenizer.Qwen2Pattern when tokenizer.Nfc => "qwen2",
            ByteLevelBpeTokenizer.Llama3Pattern => tokenizer.IgnoreMerges ? "llama-bpe" : "smaug-bpe",
            ByteLevelBpeTokenizer.SmolLMPattern => "smollm",
            _ => null,
        };
    }

    /// <summary>Unknown and control pieces become special added tokens, user-defined ones plain added tokens.</summary>
    private static List<AddedToken> AddedTokens(string[] tokens, int[] types)
    {
        var added = new List<AddedToken>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (tokens[id].Length == 0) continue;
            if (types[id] is TypeUnknown or TypeControl) added.Add(new AddedToken(tokens[id], id, Special: true));
            else if (types[id] == TypeUserDefined) added.Add(new AddedToken(tokens[id], id, Special: false));
        }
        return added;
    }

    private static bool IsBytePiece(string p) =>
        p.Length == 6 && p.StartsWith("<0x", StringComparison.Ordinal) && p[5] == '>' && Uri.IsHexDigit(p[3]) && Uri.IsHexDigit(p[4]);

    private static int? Id(GgufFile file, string key, int vocabSize)
    {
        int? id = file.GetTokenId(key);
        if (id >= vocabSize) throw Bad(file, key, $"token id {id} is outside the vocabulary of {vocabSize} tokens");
        return id;
    }

    private static CheckpointFormatException Bad(GgufFile file, string key, string what) => new(file.Source, $"metadata '{key}' {what}");

    private static string? OptionalString(GgufFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type == GgufValueType.String ? v.AsString() : throw Bad(file, key, $"should be a string, found {v.Describe()}");
    }

    private static bool? OptionalBool(GgufFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out var v)) return null;
        return v.Type == GgufValueType.Bool ? v.AsBool() : throw Bad(file, key, $"should be a Bool, found {v.Describe()}");
    }

    private static string[]? StringArray(GgufFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out var v)) return null;
        return v.IsArray && v.ElementType == GgufValueType.String ? v.AsStringArray()
            : throw Bad(file, key, $"should be an array of strings, found {v.Describe()}");
    }

    private static float[]? FloatArray(GgufFile file, string key, int length)
    {
        if (!file.Metadata.TryGetValue(key, out var v)) return null;
        float[] values = v.Value switch
        {
            float[] f => f,
            double[] d => Array.ConvertAll(d, x => (float)x),
            _ => throw Bad(file, key, $"should be an array of Float32, found {v.Describe()}"),
        };
        if (values.Length != length) throw Bad(file, key, $"has {values.Length} entries but '{TokensKey}' has {length}");
        return values;
    }

    /// <summary>An array of any integer element type (llama.cpp writes Int32), one per token.</summary>
    private static int[]? IntArray(GgufFile file, string key, int length)
    {
        if (!file.Metadata.TryGetValue(key, out var v)) return null;
        if (v.Value is int[] ints)
        {
            if (ints.Length != length) throw Bad(file, key, $"has {ints.Length} entries but '{TokensKey}' has {length}");
            return ints;
        }
        if (v.Value is not (uint[] or short[] or ushort[] or sbyte[] or byte[] or long[] or ulong[]))
            throw Bad(file, key, $"should be an array of integers, found {v.Describe()}");
        var a = (Array)v.Value;
        if (a.Length != length) throw Bad(file, key, $"has {a.Length} entries but '{TokensKey}' has {length}");
        var result = new int[length];
        for (int i = 0; i < length; i++)
        {
            long x = a.GetValue(i) switch
            {
                uint u => u, short h => h, ushort h => h, sbyte b => b, byte b => b, long l => l,
                ulong u => u > int.MaxValue ? long.MaxValue : (long)u,
                _ => long.MaxValue,
            };
            if (x is < int.MinValue or > int.MaxValue) throw Bad(file, key, $"entry {i} is out of range");
            result[i] = (int)x;
        }
        return result;
    }
}
