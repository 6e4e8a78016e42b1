using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTune.Formats;
using EdgeTune.Formats.Internal;
using EdgeTune.Formats.Onnx;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// Encoders on disk. <see cref="Load(string)"/> reads a sentence-transformers style folder (config.json + model.safetensors,
/// vocab.txt, optional modules.json / 1_Pooling/config.json / tokenizer_config.json), a folder holding an ONNX export
/// (model.onnx or onnx/model.onnx beside vocab.txt), or a model.onnx file with vocab.txt beside it. BERT, MiniLM and
/// arctic-embed checkpoints use BERT's names; DistilBERT's (model_type "distilbert": dim, n_layers, n_heads, hidden_dim)
/// are mapped by <see cref="BertNames"/>. The pooling (mean or [CLS], then Normalize or not) comes from 1_Pooling and
/// modules.json. <see cref="Save(BertEncoder, BertWordPiece, string)"/> writes the sentence-transformers layout with the encoder's pooling and F32 weights
/// under the transformers names, which <see cref="Load(string)"/> and sentence-transformers read back.
/// </summary>
public static class BertFolder
{
    /// <summary>The head count assumed for an ONNX export with no config.json beside it (all-MiniLM-L6-v2's).</summary>
    public const int DefaultOnnxHeads = 12;

    /// <summary>The encoder and its tokenizer at <paramref name="path"/> (see the type remarks).</summary>
    /// <exception cref="FileNotFoundException">Neither weights nor vocab.txt are where the layout puts them.</exception>
    /// <exception cref="CheckpointFormatException">A file is malformed, or the folder pools other than by the mean.</exception>
    /// <exception cref="Security.EncryptionKeyRequiredException">The folder is inside an encrypted run folder (use the overload with its key).</exception>
    public static (BertEncoder Encoder, BertWordPiece Tokenizer) Load(string path) => Load(path, key: null);

    /// <summary>As <see cref="Load(string)"/>; an encoder inside an encrypted run folder (<see cref="Security.RunFiles"/>, e.g.
    /// the --out of <c>edgetune finetune --task embed --encrypt</c>) is read with <paramref name="key"/>: every file decrypted
    /// and authenticated, the weights decrypted into memory. A key is ignored for a plain folder.</summary>
    /// <exception cref="Security.EncryptionKeyRequiredException">The folder is encrypted and <paramref name="key"/> is null.</exception>
    /// <exception cref="Security.EncryptedFileException">A wrong key, or a file that was altered, truncated or swapped.</exception>
    public static (BertEncoder Encoder, BertWordPiece Tokenizer) Load(string path, Security.EncryptionKey? key)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException($"encoder '{path}' is neither a folder nor a file", path);
        return Load(path, Security.RunFiles.ForReading(path, key));
    }

    /// <summary>As <see cref="Load(string)"/>, every file read through <paramref name="files"/>.</summary>
    public static (BertEncoder Encoder, BertWordPiece Tokenizer) Load(string path, Security.RunFiles files)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(files);
        string dir, onnx;
        if (File.Exists(path))
        {
            if (!path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
                throw new CheckpointFormatException(path, "an encoder file must be an ONNX export (.onnx); for safetensors give the folder");
            (dir, onnx) = (Path.GetDirectoryName(Path.GetFullPath(path))!, path);
        }
        else if (Directory.Exists(path))
        {
            dir = path;
            onnx = new[] { "model.onnx", Path.Combine("onnx", "model.onnx") }.Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists) ?? "";
        }
        else throw new FileNotFoundException($"encoder '{path}' is neither a folder nor a file", path);

        string vocab = Path.Combine(dir, "vocab.txt");
        if (!File.Exists(vocab)) throw new FileNotFoundException($"no vocab.txt in '{dir}' (a BERT encoder needs its WordPiece vocabulary)", vocab);
        var pooling = ReadPooling(dir, files);
        string configPath = Path.Combine(dir, "config.json");
        int? heads = File.Exists(configPath) ? ReadConfig(configPath, files).Heads : null;
        BertWordPiece tokenizer;
        using (var vocabStream = files.OpenRead(vocab)) tokenizer = BertWordPiece.FromVocab(vocabStream, LowerCase(dir, files));

        string safetensors = Path.Combine(dir, "model.safetensors");
        if (File.Exists(safetensors) && File.Exists(configPath))
        {
            var config = ReadConfig(configPath, files);
            using var file = files.OpenSafeTensors(safetensors);
            var parameters = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var info in file.Tensors)
            {
                if (!info.DType.IsFloat()) continue; // position_ids and the like
                using var t = file.GetTensor(info.Name);
                parameters[BertNames.Canonical(info.Name)] = t.ToFloatArray();
            }
            BertNames.AddMissingTokenTypes(parameters);
            try { return (new BertEncoder(config, parameters) { Pooling = pooling }, tokenizer); }
            catch (ArgumentException e) { throw new CheckpointFormatException(safetensors, e.Message); }
        }
        if (onnx.Length == 0)
            throw new FileNotFoundException($"no encoder weights in '{dir}': expected config.json + model.safetensors, or model.onnx", Path.Combine(dir, "model.safetensors"));
        var graph = OnnxGraph.Parse(files.ReadAllBytes(onnx), onnx);
        try
        {
            var encoder = BertOnnx.Load(graph, heads ?? DefaultOnnxHeads);
            encoder.Pooling = pooling;
            return (encoder, tokenizer);
        }
        catch (ArgumentException e) { throw new CheckpointFormatException(onnx, e.Message); }
    }

    /// <summary>
    /// Writes <paramref name="encoder"/> (F32, merged: apply <see cref="Adapters.LoraAdapter.Merge"/> first) with
    /// <paramref name="tokenizer"/>'s vocabulary into <paramref name="dir"/>: config.json, model.safetensors, vocab.txt,
    /// tokenizer_config.json, modules.json, 1_Pooling/config.json (the encoder's <see cref="BertEncoder.Pooling"/>) and,
    /// when it normalises, 2_Normalize/.
    /// </summary>
    public static void Save(BertEncoder encoder, BertWordPiece tokenizer, string dir) => Save(encoder, tokenizer, dir, Security.RunFiles.Plain);

    /// <summary>As <see cref="Save(BertEncoder, BertWordPiece, string)"/>, every file written through <paramref name="files"/>
    /// (all of them encrypted when <paramref name="files"/> are an encrypted run folder's, e.g. the folder itself or a
    /// folder inside it).</summary>
    public static void Save(BertEncoder encoder, BertWordPiece tokenizer, string dir, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(dir);
        ArgumentNullException.ThrowIfNull(files);
        var c = encoder.Config;
        var projections = encoder.Projections().Where(p => p.Layer is not Nn.Linear).Select(p => p.Path).ToList();
        if (projections.Count > 0)
            throw new InvalidOperationException($"the encoder still has adapter layers ({projections[0]}, …): merge the adapter before saving the encoder");
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(Path.Combine(dir, "1_Pooling"));
        if (encoder.Pooling.Normalize) Directory.CreateDirectory(Path.Combine(dir, "2_Normalize"));
        SafeTensorsWriter.Write(files, Path.Combine(dir, "model.safetensors"),
            encoder.Parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)), new Dictionary<string, string> { ["format"] = "pt" });
        tokenizer.SaveVocab(Path.Combine(dir, "vocab.txt"), files);
        WriteJson(files, Path.Combine(dir, "config.json"), w =>
        {
            w.WriteStartArray("architectures"); w.WriteStringValue("BertModel"); w.WriteEndArray();
            w.WriteString("model_type", "bert");
            w.WriteNumber("vocab_size", c.VocabSize);
            w.WriteNumber("hidden_size", c.HiddenSize);
            w.WriteNumber("num_hidden_layers", c.Layers);
            w.WriteNumber("num_attention_heads", c.Heads);
            w.WriteNumber("intermediate_size", c.IntermediateSize);
            w.WriteNumber("max_position_embeddings", c.MaxPositions);
            w.WriteNumber("type_vocab_size", c.TypeVocabSize);
            w.WriteNumber("layer_norm_eps", c.LayerNormEps);
            w.WriteString("hidden_act", "gelu");
            w.WriteString("torch_dtype", "float32");
        });
        WriteJson(files, Path.Combine(dir, "tokenizer_config.json"), w =>
        {
            w.WriteBoolean("do_lower_case", tokenizer.LowerCase);
            w.WriteString("tokenizer_class", "BertTokenizer");
        });
        WriteJson(files, Path.Combine(dir, "1_Pooling", "config.json"), w =>
        {
            w.WriteNumber("word_embedding_dimension", c.HiddenSize);
            w.WriteBoolean("pooling_mode_cls_token", encoder.Pooling.Mode == PoolingMode.Cls);
            w.WriteBoolean("pooling_mode_mean_tokens", encoder.Pooling.Mode == PoolingMode.Mean);
            w.WriteBoolean("pooling_mode_max_tokens", false);
            w.WriteBoolean("pooling_mode_mean_sqrt_len_tokens", false);
        });
        var modules = new (string Path, string Type)[]
        {
            ("", "sentence_transformers.models.Transformer"), ("1_Pooling", "sentence_transformers.models.Pooling"), ("2_Normalize", "sentence_transformers.models.Normalize"),
        }[..(encoder.Pooling.Normalize ? 3 : 2)];
        files.Write(Path.Combine(dir, "modules.json"), fs =>
        {
            using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
            w.WriteStartArray();
            for (int i = 0; i < modules.Length; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("idx", i);
                w.WriteString("name", i.ToString(CultureInfo.InvariantCulture));
                w.WriteString("path", modules[i].Path);
                w.WriteString("type", modules[i].Type);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    private static void WriteJson(Security.RunFiles files, string path, Action<Utf8JsonWriter> body) => files.Write(path, fs =>
    {
        using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        body(w);
        w.WriteEndObject();
    });

    /// <summary>A transformers BertConfig (config.json), or a DistilBertConfig (model_type "distilbert": dim, n_layers,
    /// n_heads, hidden_dim, activation; no token types, so one; LayerNorm eps 1e-12 as DistilBERT fixes it).</summary>
    private static BertConfig ReadConfig(string path, Security.RunFiles files)
    {
        using var doc = Parse(path, files);
        var r = doc.RootElement;
        int Int(string key) => r.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n
            : throw new CheckpointFormatException(path, $"'{key}' is missing or not an integer");
        string type = r.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "bert";
        if (type is not ("bert" or "roberta" or "xlm-roberta" or "distilbert"))
            throw new CheckpointFormatException(path, $"model_type '{type}' is not a BERT encoder");
        bool distil = type == "distilbert";
        string actKey = distil ? "activation" : "hidden_act";
        if (r.TryGetProperty(actKey, out var act) && act.GetString() is { } a && a != "gelu")
            throw new CheckpointFormatException(path, $"{actKey} '{a}' is not supported (the encoder runs erf GELU)");
        float eps = r.TryGetProperty("layer_norm_eps", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetSingle() : 1e-12f;
        var config = distil
            ? new BertConfig(Int("vocab_size"), Int("dim"), Int("n_layers"), Int("n_heads"), Int("hidden_dim"), Int("max_position_embeddings"), 1, 1e-12f)
            : new BertConfig(Int("vocab_size"), Int("hidden_size"), Int("num_hidden_layers"), Int("num_attention_heads"), Int("intermediate_size"),
                Int("max_position_embeddings"), r.TryGetProperty("type_vocab_size", out _) ? Int("type_vocab_size") : 2, eps);
        try { config.Validate(); }
        catch (ArgumentException ex) { throw new CheckpointFormatException(path, ex.Message); }
        return config;
    }

    /// <summary>The folder's sentence-transformers head: exactly one of pooling_mode_mean_tokens / pooling_mode_cls_token in
    /// 1_Pooling/config.json (other modes are refused), normalised when modules.json lists a Normalize module. Without
    /// 1_Pooling: the mean; without modules.json: normalised (all-MiniLM-L6-v2's head, what an ONNX folder is taken to be).</summary>
    private static SentencePooling ReadPooling(string dir, Security.RunFiles files)
    {
        var mode = PoolingMode.Mean;
        string pooling = Path.Combine(dir, "1_Pooling", "config.json");
        if (File.Exists(pooling))
        {
            using var doc = Parse(pooling, files);
            var on = doc.RootElement.EnumerateObject()
                .Where(p => p.Name.StartsWith("pooling_mode_", StringComparison.Ordinal) && p.Value.ValueKind == JsonValueKind.True).Select(p => p.Name).ToList();
            if (on.FirstOrDefault(n => n is not ("pooling_mode_mean_tokens" or "pooling_mode_cls_token")) is { } other)
                throw new CheckpointFormatException(pooling, $"{other} is not supported; EdgeTune pools by the mean (pooling_mode_mean_tokens) or [CLS] (pooling_mode_cls_token)");
            if (on.Count != 1)
                throw new CheckpointFormatException(pooling, "exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token must be true");
            mode = on[0] == "pooling_mode_cls_token" ? PoolingMode.Cls : PoolingMode.Mean;
        }
        bool normalize = true;
        string modules = Path.Combine(dir, "modules.json");
        if (File.Exists(modules))
        {
            using var doc = Parse(modules, files);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new CheckpointFormatException(modules, "modules.json is not a list of modules");
            normalize = doc.RootElement.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.Object && m.TryGetProperty("type", out var t)
                && t.ValueKind == JsonValueKind.String && t.GetString()!.EndsWith(".Normalize", StringComparison.Ordinal));
        }
        return new SentencePooling(mode, normalize);
    }

    private static bool LowerCase(string dir, Security.RunFiles files)
    {
        string path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return true;
        using var doc = Parse(path, files);
        return !doc.RootElement.TryGetProperty("do_lower_case", out var v) || v.ValueKind != JsonValueKind.False;
    }

    private static JsonDocument Parse(string path, Security.RunFiles files)
    {
        try { return JsonDocument.Parse(files.ReadAllBytes(path)); }
        catch (JsonException e) { throw new CheckpointFormatException(path, $"not valid JSON: {e.Message}"); }
    }
}

/// <summary>Training files for encoder fine-tuning (JSON lines, or two tab-separated columns).</summary>
public static class EncoderData
{
    private static readonly string[] AnchorKeys = ["anchor", "query", "instruction", "sentence1", "question", "text"];
    private static readonly string[] PositiveKeys = ["positive", "document", "output", "answer", "sentence2", "response"];
    private static readonly string[] TextKeys = ["text", "sentence", "instruction", "query"];
    private static readonly string[] LabelKeys = ["label", "labels", "class", "category", "motivation_app"];

    /// <summary>
    /// (anchor, positive) pairs: .jsonl rows with an anchor field (anchor, query, instruction, sentence1, question, text)
    /// and a positive field (positive, document, output, answer, sentence2, response, or self-instruct's
    /// <c>instances[0].output</c>); or .tsv lines "anchor&lt;TAB&gt;positive". Rows with an empty side are skipped.
    /// </summary>
    /// <exception cref="InvalidDataException">A row is not JSON, lacks a field, or no usable row remains.</exception>
    public static List<TextPair> ReadPairs(string path) =>
        Read(path, (row, line) => new TextPair(Field(row, AnchorKeys, path, line), Positive(row, path, line)),
            cols => new TextPair(cols[0], cols[1]));

    /// <summary>
    /// Labelled texts: .jsonl rows with a text field (text, sentence, instruction, query) and a label field (label,
    /// labels, class, category, motivation_app; a string or an integer), or .tsv lines "text&lt;TAB&gt;label". Label
    /// names are numbered in order of first appearance; integer labels keep their value.
    /// </summary>
    public static (List<LabeledText> Examples, List<string> Labels) ReadLabeled(string path)
    {
        var raw = Read(path, (row, line) => (Field(row, TextKeys, path, line), LabelText(row, path, line)), cols => (cols[0], cols[1]));
        bool numeric = raw.All(r => int.TryParse(r.Item2, NumberStyles.None, CultureInfo.InvariantCulture, out _));
        var names = new List<string>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var examples = new List<LabeledText>(raw.Count);
        foreach (var (text, label) in raw)
        {
            int id;
            if (numeric) id = int.Parse(label, CultureInfo.InvariantCulture);
            else if (!ids.TryGetValue(label, out id)) { id = names.Count; ids[label] = id; names.Add(label); }
            examples.Add(new LabeledText(text, id));
        }
        if (numeric) names = Enumerable.Range(0, examples.Max(e => e.Label) + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
        if (names.Count < 2) throw new InvalidDataException($"{path}: classification needs at least 2 labels; found {names.Count}");
        return (examples, names);
    }

    /// <summary>
    /// Texts to classify, each with its label when the file gives one: .txt lines (no labels), .jsonl rows with a text
    /// field and an optional label field (as <see cref="ReadLabeled"/>), or .tsv lines "text[&lt;TAB&gt;label]".
    /// </summary>
    /// <exception cref="InvalidDataException">A row is not JSON or lacks a text field, or no text remains.</exception>
    public static List<(string Text, string? Label)> ReadTexts(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"data file '{path}' not found", path);
            var lines = File.ReadLines(path, Encoding.UTF8).Where(l => l.Trim().Length > 0).Select(l => (l, (string?)null)).ToList();
            return lines.Count > 0 ? lines : throw new InvalidDataException($"{path}: no text");
        }
        return Read(path, (row, line) => (Field(row, TextKeys, path, line), LabelKeys.Any(k => row.TryGetProperty(k, out _)) ? LabelText(row, path, line) : null),
            cols => (cols[0], cols.Length > 1 && cols[1].Trim().Length > 0 ? cols[1] : (string?)null), minColumns: 1);
    }

    private static List<T> Read<T>(string path, Func<JsonElement, int, T> fromJson, Func<string[], T> fromColumns, int minColumns = 2)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"data file '{path}' not found", path);
        bool tsv = path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase);
        if (!tsv && !path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{path}: encoder data is .jsonl (one JSON object a line) or .tsv (tab-separated columns)");
        var result = new List<T>();
        int n = 0;
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            n++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (tsv)
            {
                var cols = line.Split('\t');
                if (cols.Length < minColumns) throw new InvalidDataException($"{path}:{n}: expected two tab-separated columns");
                if (cols.Take(minColumns).All(c => c.Trim().Length > 0)) result.Add(fromColumns(cols));
                continue;
            }
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{n}: not a JSON object: {e.Message}"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{n}: not a JSON object");
                try { result.Add(fromJson(doc.RootElement, n)); }
                catch (SkipRow) { }
            }
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no usable row");
        return result;
    }

    private sealed class SkipRow : Exception;

    private static string Field(JsonElement row, string[] keys, string path, int line)
    {
        foreach (string k in keys)
            if (row.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String)
                return v.GetString()!.Trim().Length > 0 ? v.GetString()! : throw new SkipRow();
        throw new InvalidDataException($"{path}:{line}: no string field among {string.Join(", ", keys)}");
    }

    private static string Positive(JsonElement row, string path, int line)
    {
        if (row.TryGetProperty("instances", out var inst) && inst.ValueKind == JsonValueKind.Array && inst.GetArrayLength() > 0
            && inst[0].ValueKind == JsonValueKind.Object && inst[0].TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.String)
            return o.GetString()!.Trim().Length > 0 ? o.GetString()! : throw new SkipRow();
        return Field(row, PositiveKeys, path, line);
    }

    private static string LabelText(JsonElement row, string path, int line)
    {
        foreach (string k in LabelKeys)
            if (row.TryGetProperty(k, out var v))
                return v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString()!,
                    JsonValueKind.Number when v.TryGetInt32(out int i) && i >= 0 => i.ToString(CultureInfo.InvariantCulture),
                    _ => throw new InvalidDataException($"{path}:{line}: label '{k}' must be a string or a non-negative integer"),
                };
        throw new InvalidDataException($"{path}:{line}: no label field among {string.Join(", ", LabelKeys)}");
    }
}
