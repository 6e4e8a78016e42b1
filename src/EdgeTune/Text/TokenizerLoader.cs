using System.Text.Json;

namespace EdgeTune.Text;

/// <summary>
/// Opens a tokenizer by what a folder or file holds, in this order: <c>tokenizer.json</c> (Hugging Face),
/// <c>tokenizer.model</c> / <c>tokenizer.model.v3</c> (SentencePiece), <c>vocab.json</c> + <c>merges.txt</c>
/// (byte-level BPE, GPT-2/Qwen2/Qwen3), <c>tokenizer.bin</c> / <c>tok*.bin</c> (llama2.c). Special tokens, BOS/EOS/PAD
/// and add_bos_token come from <c>tokenizer_config.json</c> beside it when present; BOS/EOS/PAD it leaves unnamed
/// come from <c>generation_config.json</c> (Qwen3's bos_token is null there, its generation config says 151643).
/// A <c>.gguf</c> file (a model or a vocab-only file) gives the tokenizer embedded in its metadata (<see cref="Formats.GgufTokenizer"/>).
/// </summary>
public static class TokenizerLoader
{
    public static ITokenizer Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) return LoadFile(PickFile(path));
        if (File.Exists(path)) return LoadFile(path);
        throw new FileNotFoundException($"{path}: no such tokenizer file or folder", path);
    }

    /// <summary>The file <see cref="Load"/> would read in a folder.</summary>
    public static string PickFile(string folder)
    {
        foreach (string name in new[] { "tokenizer.json", "tokenizer.model", "tokenizer.model.v3", "vocab.json", "tokenizer.bin", ByteTokenizer.MarkerFile })
        {
            string p = Path.Combine(folder, name);
            if (File.Exists(p)) return p;
        }
        string? bin = Directory.EnumerateFiles(folder, "tok*.bin").Order(StringComparer.Ordinal).FirstOrDefault();
        if (bin is not null) return bin;
        throw new FileNotFoundException(
            $"{folder}: no tokenizer found (looked for tokenizer.json, tokenizer.model, tokenizer.model.v3, vocab.json + merges.txt, tokenizer.bin, tok*.bin, " + ByteTokenizer.MarkerFile + ")");
    }

    /// <summary>tokenizer_config.json beside <paramref name="file"/>, or null.</summary>
    public static TokenizerConfig? LoadConfigBeside(string file)
    {
        string cfg = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "tokenizer_config.json");
        return File.Exists(cfg) ? TokenizerConfig.Load(cfg) : null;
    }

    private static ITokenizer LoadFile(string path)
    {
        string name = Path.GetFileName(path);
        if (name == ByteTokenizer.MarkerFile) return new ByteTokenizer();
        if (name.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return Formats.GgufTokenizer.Read(path).Tokenizer;
        TokenizerConfig? config = LoadConfigBeside(path);
        if (name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && name != "vocab.json")
            return Internal.HfTokenizerJson.Load(path, config);
        if (name == "vocab.json") return LoadVocabMerges(path, config);
        if (name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)) return Llama2cTokenizer.Load(path);
        if (name.Contains(".model", StringComparison.OrdinalIgnoreCase)) return LoadSentencePiece(path, config);
        throw new NotSupportedException($"{path}: unknown tokenizer file type (expected tokenizer.json, *.model, vocab.json, *.bin or *.gguf)");
    }

    private static ITokenizer LoadSentencePiece(string path, TokenizerConfig? config)
    {
        var added = config?.AddedTokens ?? [];
        var plain = SentencePieceModelTokenizer.Load(path, added);
        if (config is null) return plain;
        // BOS/EOS/PAD named in tokenizer_config.json win over the model proto's ids (e.g. Phi-3's <|endoftext|>).
        int? Id(string? token) => token is null ? null : plain.TokenToId(token);
        int? bos = Id(config.BosToken) ?? plain.BosId, eos = Id(config.EosToken) ?? plain.EosId, pad = Id(config.PadToken);
        FillFromGenerationConfig(path, id => plain.IdToToken(id) is not null, ref bos, ref eos, ref pad);
        return SentencePieceModelTokenizer.Load(path, added, pad, config.AddBosToken ?? true, bos, eos);
    }

    /// <summary>Byte-level BPE from vocab.json + merges.txt (GPT-2 layout). Qwen2's regex and NFC are used when
    /// tokenizer_config.json names Qwen2Tokenizer, GPT-2's otherwise.</summary>
    public static ByteLevelBpeTokenizer LoadVocabMerges(string vocabPath, TokenizerConfig? config = null)
    {
        string mergesPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(vocabPath))!, "merges.txt");
        if (!File.Exists(mergesPath)) throw new FileNotFoundException($"{mergesPath}: merges.txt expected beside {vocabPath}", mergesPath);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        using (var doc = TokenizerConfig.ReadJson(vocabPath))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{vocabPath}: expected an object of token to id");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!p.Value.TryGetInt32(out int id)) throw new InvalidDataException($"{vocabPath}: value of '{p.Name}' must be an integer id");
                vocab[p.Name] = id;
            }
        }
        var merges = File.ReadLines(mergesPath).Where(l => l.Length > 0 && !l.StartsWith("#version", StringComparison.Ordinal)).ToList();
        bool qwen = config?.TokenizerClass?.StartsWith("Qwen2", StringComparison.Ordinal) == true;
        var added = new List<AddedToken>(config?.AddedTokens ?? []);
        if (added.Count == 0 && vocab.TryGetValue("<|endoftext|>", out int eot)) added.Add(new AddedToken("<|endoftext|>", eot));
        int? Id(string? t) => t is null ? null : added.FirstOrDefault(a => a.Content == t)?.Id ?? (vocab.TryGetValue(t, out int id) ? id : null);
        int? eos = config is null ? Id("<|endoftext|>") : Id(config.EosToken);
        int? bos = config is null ? Id("<|endoftext|>") : Id(config.BosToken);
        int? pad = Id(config?.PadToken);
        // Qwen3: tokenizer_config.json has "bos_token": null; generation_config.json names bos_token_id 151643.
        var known = new HashSet<int>(vocab.Values.Concat(added.Select(a => a.Id)));
        FillFromGenerationConfig(vocabPath, known.Contains, ref bos, ref eos, ref pad);
        return new ByteLevelBpeTokenizer(vocab, merges, qwen ? ByteLevelBpeTokenizer.Qwen2Pattern : ByteLevelBpeTokenizer.Gpt2Pattern,
            added, nfc: qwen, addPrefixSpace: false, bos, eos, pad, Id(config?.UnkToken), config?.AddBosToken ?? false);
    }

    /// <summary>BOS/EOS/PAD that tokenizer_config.json left unnamed, from generation_config.json beside
    /// <paramref name="file"/> (its first eos_token_id when it lists several); ids the vocabulary lacks are ignored.</summary>
    internal static void FillFromGenerationConfig(string file, Func<int, bool> known, ref int? bos, ref int? eos, ref int? pad)
    {
        if (bos is not null && eos is not null && pad is not null) return;
        var gen = Internal.GenerationConfigIds.LoadBeside(file);
        if (gen is null) return;
        if (bos is null && gen.Bos is int b && known(b)) bos = b;
        if (eos is null && gen.Eos.Count > 0 && known(gen.Eos[0])) eos = gen.Eos[0];
        if (pad is null && gen.Pad is int p && known(p)) pad = p;
    }
}
