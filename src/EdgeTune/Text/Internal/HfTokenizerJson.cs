using System.Text.Json;
using System.Text.RegularExpressions;

namespace EdgeTune.Text.Internal;

/// <summary>
/// Reads a Hugging Face tokenizer.json (model.type "BPE") into one of our tokenizers:
/// byte-level BPE when the pre-tokenizer or decoder is ByteLevel (regex from a Split pre-tokenizer, else GPT-2's),
/// SentencePiece-style BPE when the model has byte_fallback, a Metaspace pre-tokenizer or a "▁" Prepend normalizer.
/// </summary>
internal static class HfTokenizerJson
{
    public static ITokenizer Load(string path, TokenizerConfig? config)
    {
        using var doc = TokenizerConfig.ReadJson(path);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: missing object field 'model'");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (type != "BPE")
            throw new NotSupportedException($"{path}: model.type '{type}' is not supported (only 'BPE'; use tokenizer.model for Unigram SentencePiece)");
        if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{path}: missing object field 'model.vocab'");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in vocabEl.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new InvalidDataException($"{path}: model.vocab['{p.Name}'] must be a non-negative integer id");
            vocab[p.Name] = id;
        }
        var merges = ReadMerges(model, path);

        var added = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var e in at.EnumerateArray())
            {
                if (!e.TryGetProperty("id", out var idEl) || !idEl.TryGetInt32(out int id))
                    throw new InvalidDataException($"{path}: added_tokens[{i}].id must be an integer");
                added.Add(TokenizerConfig.ReadAddedToken(e, id, path, $"added_tokens[{i}]"));
                i++;
            }
        }
        if (config is not null)
            foreach (var a in config.AddedTokens)
                if (!added.Any(x => x.Id == a.Id)) added.Add(a);

        var pre = root.TryGetProperty("pre_tokenizer", out var preEl) ? preEl : default;
        var norm = root.TryGetProperty("normalizer", out var normEl) ? normEl : default;
        var decoder = root.TryGetProperty("decoder", out var decEl) ? decEl : default;
        bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
        string? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;

        int? Lookup(string? token) => token is null ? null
            : added.FirstOrDefault(a => a.Content == token)?.Id ?? (vocab.TryGetValue(token, out int id) ? id : null);
        // Without tokenizer_config.json: BOS from the post-processor template, else the usual names.
        string? bosText = config is null ? FirstTemplateSpecial(root) ?? "<s>" : config.BosToken;
        string? eosText = config is null ? (Lookup("</s>") is not null ? "</s>" : "<|endoftext|>") : config.EosToken;
        int? bos = Lookup(bosText), eos = Lookup(eosText), pad = Lookup(config?.PadToken), unkId = Lookup(config?.UnkToken ?? unk);
        var known = new HashSet<int>(vocab.Values.Concat(added.Select(a => a.Id)));
        TokenizerLoader.FillFromGenerationConfig(path, known.Contains, ref bos, ref eos, ref pad);
        bool addBos = config?.AddBosToken ?? FirstTemplateSpecial(root) is not null;

        var byteLevel = FindAll(pre, "ByteLevel").Concat(FindAll(decoder, "ByteLevel")).FirstOrDefault();
        if (byteLevel.ValueKind == JsonValueKind.Object)
        {
            string? pattern = FindAll(pre, "Split").Select(s => SplitRegex(s, path)).FirstOrDefault(p => p is not null);
            var preByteLevel = FindAll(pre, "ByteLevel").FirstOrDefault();
            bool useRegex = preByteLevel.ValueKind == JsonValueKind.Object && (!preByteLevel.TryGetProperty("use_regex", out var ur) || ur.ValueKind != JsonValueKind.False);
            pattern ??= useRegex ? ByteLevelBpeTokenizer.Gpt2Pattern : @"[\s\S]+";
            bool prefix = preByteLevel.ValueKind == JsonValueKind.Object && preByteLevel.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True;
            bool nfc = FindAll(norm, "NFC").Any();
            var digitsEl = FindAll(pre, "Digits").FirstOrDefault();
            var digits = digitsEl.ValueKind != JsonValueKind.Object ? DigitSplit.None
                : digitsEl.TryGetProperty("individual_digits", out var ind) && ind.ValueKind == JsonValueKind.True ? DigitSplit.Individual : DigitSplit.Runs;
            CheckRegex(pattern!, path);
            bool ignoreMerges = model.TryGetProperty("ignore_merges", out var im) && im.ValueKind == JsonValueKind.True;
            return new ByteLevelBpeTokenizer(vocab, merges.Select(m => m.Left + " " + m.Right), pattern!, added, nfc, prefix, bos, eos, pad, unkId, addBos,
                ignoreMerges, digits);
        }

        var meta = FindAll(pre, "Metaspace").FirstOrDefault();
        bool prepend = FindAll(norm, "Prepend").Any();
        if (byteFallback || meta.ValueKind == JsonValueKind.Object || prepend)
        {
            var scheme = PrependScheme.Always;
            if (meta.ValueKind == JsonValueKind.Object)
            {
                string? s = meta.TryGetProperty("prepend_scheme", out var ps) ? ps.GetString() : null;
                bool legacyAdd = !meta.TryGetProperty("add_prefix_space", out var ap) || ap.ValueKind != JsonValueKind.False;
                scheme = s switch
                {
                    "first" => PrependScheme.First,
                    "never" => PrependScheme.Never,
                    "always" => PrependScheme.Always,
                    null => legacyAdd ? PrependScheme.Always : PrependScheme.Never,
                    _ => throw new NotSupportedException($"{path}: pre_tokenizer Metaspace prepend_scheme '{s}' is not supported"),
                };
            }
            else if (!prepend) scheme = PrependScheme.Never;
            return new SentencePieceBpeTokenizer(vocab, merges, added, scheme, byteFallback, bos, eos, pad, unkId, addBos,
                metaspace: meta.ValueKind == JsonValueKind.Object);
        }
        throw new NotSupportedException($"{path}: BPE model with neither a ByteLevel pre-tokenizer/decoder nor SentencePiece markers (byte_fallback, Metaspace, Prepend '▁') is not supported");
    }

    private static List<(string Left, string Right)> ReadMerges(JsonElement model, string path)
    {
        var list = new List<(string, string)>();
        if (!model.TryGetProperty("merges", out var m)) return list;
        if (m.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: model.merges must be a list");
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                string s = e.GetString()!;
                int sp = s.IndexOf(' ', 1);
                if (sp < 0) throw new InvalidDataException($"{path}: model.merges[{i}] '{s}' is not 'left right'");
                list.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2)
                list.Add((e[0].GetString() ?? "", e[1].GetString() ?? ""));
            else throw new InvalidDataException($"{path}: model.merges[{i}] must be a string or a [left, right] pair");
            i++;
        }
        return list;
    }

    /// <summary>Every component of the given type in a (possibly nested Sequence) pre-tokenizer/normalizer/decoder.</summary>
    private static IEnumerable<JsonElement> FindAll(JsonElement e, string type)
    {
        if (e.ValueKind != JsonValueKind.Object) yield break;
        string? t = e.TryGetProperty("type", out var tt) ? tt.GetString() : null;
        if (t == type) yield return e;
        foreach (string key in new[] { "pretokenizers", "normalizers", "decoders" })
            if (e.TryGetProperty(key, out var arr) && arr.ValueKind == JsonValueKind.Array)
                foreach (var c in arr.EnumerateArray())
                    foreach (var r in FindAll(c, type)) yield return r;
    }

    private static string? SplitRegex(JsonElement split, string path)
    {
        if (!split.TryGetProperty("pattern", out var p)) return null;
        if (p.TryGetProperty("Regex", out var r)) return ToDotNetRegex(r.GetString() ?? "");
        if (p.TryGetProperty("String", out var s)) return Regex.Escape(s.GetString() ?? "");
        throw new InvalidDataException($"{path}: pre_tokenizer Split.pattern must hold 'Regex' or 'String'");
    }

    /// <summary>Oniguruma/fancy-regex to .NET: possessive quantifiers become atomic groups.</summary>
    internal static string ToDotNetRegex(string pattern) =>
        Regex.Replace(pattern, @"(\\[pP]\{[^}]+\}|\[[^\]]*\]|\\.|[^\\\[\]()|])([?+*]|\{\d+(?:,\d*)?\})\+", "(?>$1$2)");

    private static void CheckRegex(string pattern, string path)
    {
        try { _ = new Regex(pattern); }
        catch (ArgumentException e) { throw new NotSupportedException($"{path}: pre_tokenizer regex is not valid in .NET: {e.Message}", e); }
    }

    /// <summary>The first special token of post_processor's "single" template (that is where BOS is added).</summary>
    private static string? FirstTemplateSpecial(JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) return null;
        foreach (var proc in FindAllProcessors(pp))
        {
            if (!proc.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) continue;
            foreach (var item in single.EnumerateArray())
            {
                if (item.TryGetProperty("SpecialToken", out var st)) return st.GetProperty("id").GetString();
                return null;
            }
        }
        return null;
    }

    private static IEnumerable<JsonElement> FindAllProcessors(JsonElement pp)
    {
        yield return pp;
        if (pp.TryGetProperty("processors", out var arr) && arr.ValueKind == JsonValueKind.Array)
            foreach (var p in arr.EnumerateArray()) yield return p;
    }
}
