using System.Text;
using EdgeTune.Formats.Hub;
using EdgeTune.Tensors;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// A data file turned into training and validation sequences of one length, with its <see cref="DataReport"/>.
/// Validation split: JSONL rows (by source line, so all samples of a row stay together) are drawn with
/// <see cref="DatasetOptions.Seed"/>; plain text holds out its TAIL (the last lines), so validation text never
/// overlaps training text. Loading never fails on a bad row: it is rejected and reported.
/// </summary>
public sealed class TrainingDataset
{
    public const string ReasonTemplate = "template error";
    public const string ReasonNoTrainedToken = "no trained token within seq-len";

    private TrainingDataset(IReadOnlyList<TrainingSequence> train, IReadOnlyList<TrainingSequence> validation, DataReport report, int padId)
    {
        Train = train;
        Validation = validation;
        Report = report;
        PadId = padId;
    }

    public IReadOnlyList<TrainingSequence> Train { get; }
    public IReadOnlyList<TrainingSequence> Validation { get; }
    public DataReport Report { get; }
    public int SeqLen => Report.SeqLen;
    /// <summary>The id used for padding (tokenizer PAD, else EOS, else 0).</summary>
    public int PadId { get; }

    /// <summary>Loads <paramref name="path"/> (format from <see cref="DatasetOptions.Format"/> or detected): plain text,
    /// JSONL, a JSON array, CSV/TSV or Parquet, see <see cref="DataFiles"/> and <see cref="DataFormat"/>.</summary>
    /// <param name="template">the model's chat template, or null when it has none.</param>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="InvalidDataException">the file is binary, preference data, or its format cannot be detected.</exception>
    public static TrainingDataset Load(string path, ITokenizer tokenizer, ChatTemplate? template, DatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new DatasetOptions();
        options.Validate();
        if (HubDatasetReference.IsHubReference(path))
            throw new ArgumentException($"'{path}' is a Hub dataset: load it with TrainingDataset.LoadAsync, which downloads it", nameof(path));
        if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
        var kind = DataFiles.DetectKind(path);
        if (options.Format == DataFormat.PlainText || (options.Format == DataFormat.Auto && kind == DataFileKind.Text))
            return FromText(DataFiles.ReadText(path), tokenizer, options, path);
        var log = new RejectionLog(options.MaxRejectExamples);
        var read = DataFiles.Read(path, kind, options.Format, log);
        return FromSamples(read.Samples, tokenizer, template, options with { Format = read.Format }, path, read.RowsRead, log, kind, read.Columns);
    }

    /// <summary>Loads several files of one layout as one dataset (the shards of a Hub dataset split). Rows are numbered
    /// on from one file to the next, so the validation draw and the rejections see distinct rows.</summary>
    /// <param name="source">the name the report gives the data (default: the first path and the file count).</param>
    /// <exception cref="InvalidDataException">a file is plain text, binary, or of another layout than the first.</exception>
    public static TrainingDataset Load(IReadOnlyList<string> paths, ITokenizer tokenizer, ChatTemplate? template, DatasetOptions? options = null,
        string? source = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (paths.Count == 0) throw new ArgumentException("no data files", nameof(paths));
        options ??= new DatasetOptions();
        options.Validate();
        if (paths.Count == 1)
        {
            var one = Load(paths[0], tokenizer, template, options);
            return source is null ? one : new TrainingDataset(one.Train, one.Validation, one.Report with { Source = source }, one.PadId);
        }
        var log = new RejectionLog(options.MaxRejectExamples);
        var samples = new List<DataSample>();
        var format = options.Format;
        DataFileKind? firstKind = null;
        string columns = "";
        int rows = 0, offset = 0;
        foreach (string path in paths)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
            var kind = DataFiles.DetectKind(path);
            if (kind == DataFileKind.Text || format == DataFormat.PlainText)
                throw new InvalidDataException($"{path}: plain text files cannot be combined into one dataset; expected JSONL, JSON, CSV or Parquet rows");
            log.LineOffset = offset;
            var read = DataFiles.Read(path, kind, options.Format, log); // each file detected on its own, then compared
            if (format != DataFormat.Auto && read.Format != format)
                throw new InvalidDataException($"{path}: its rows are {read.Format}, but {paths[0]} holds {format}; the files of one dataset must share a layout");
            format = read.Format;
            firstKind ??= kind;
            if (columns.Length == 0) columns = read.Columns;
            int last = 0;
            foreach (var s in read.Samples)
            {
                samples.Add(s with { Line = s.Line + offset });
                last = Math.Max(last, s.Line);
            }
            rows += read.RowsRead;
            // JSONL rows are numbered by line, blank lines included: the next file starts past every number used.
            offset = Math.Max(Math.Max(offset + read.RowsRead, offset + last), log.MaxLine);
        }
        log.LineOffset = 0;
        return FromSamples(samples, tokenizer, template, options with { Format = format }, source ?? $"{paths[0]} (+{paths.Count - 1} files)",
            rows, log, firstKind!.Value, columns);
    }

    /// <summary>As <see cref="Load(string, ITokenizer, ChatTemplate?, DatasetOptions?)"/>, and also for a Hub dataset,
    /// <c>hf://datasets/org/name[@revision][/config][/split]</c>, whose data files are downloaded into the Hub cache (or
    /// found there, offline) first; see <see cref="HubDatasetReference"/>.</summary>
    /// <param name="hub">Hub settings; null: <see cref="HubOptions.FromEnvironment()"/>. Unused for a local file.</param>
    public static async Task<TrainingDataset> LoadAsync(string data, ITokenizer tokenizer, ChatTemplate? template, DatasetOptions? options = null,
        HubOptions? hub = null, IProgress<DownloadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!HubDatasetReference.IsHubReference(data)) return Load(data, tokenizer, template, options);
        var reference = HubDatasetReference.Parse(data);
        using var client = new HubClient(hub);
        var files = await client.DownloadDatasetAsync(reference, progress, ct).ConfigureAwait(false);
        return await Task.Run(() => Load(files, tokenizer, template, options, data), ct).ConfigureAwait(false);
    }

    /// <summary>Plain text: the head is cut into training windows, the tail lines held out for validation.</summary>
    public static TrainingDataset FromText(string text, ITokenizer tokenizer, DatasetOptions? options = null, string source = "text")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options ??= new DatasetOptions();
        options.Validate();
        int padId = PadOf(tokenizer);
        var lineStarts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++) if (text[i] == '\n' && i + 1 < text.Length) lineStarts.Add(i + 1);
        int lines = text.Length == 0 ? 0 : lineStarts.Count;
        int valLines = options.ValidationCount > 0 ? Math.Min(options.ValidationCount, Math.Max(0, lines - 1))
            : options.ValidationFraction > 0 && lines > 1 ? Math.Clamp((int)Math.Round(options.ValidationFraction * lines), 1, lines - 1) : 0;
        int cut = valLines == 0 ? text.Length : lineStarts[lines - valLines];
        int[] trainStream = TokenizeStream(text[..cut], tokenizer);
        int[] valStream = valLines == 0 ? [] : TokenizeStream(text[cut..], tokenizer);
        var train = SequencePacker.Windows(trainStream, options.SeqLen, padId);
        var val = SequencePacker.Windows(valStream, options.SeqLen, padId);
        var report = new DataReport
        {
            Source = source, Format = DataFormat.PlainText, FileKind = DataFileKind.Text, Columns = Internal.DataLayouts.Mapping(DataFormat.PlainText),
            SeqLen = options.SeqLen, Packed = false,
            RowsRead = lines, RowsUsed = lines, Samples = 1 + (valLines > 0 ? 1 : 0),
            TokensTotal = trainStream.Length + valStream.Length,
            TrainRows = lines - valLines, ValidationRows = valLines,
            TrainSequences = train.Sequences.Count, ValidationSequences = val.Sequences.Count,
            TrainedTokens = train.TrainedTokens, ValidationTrainedTokens = val.TrainedTokens,
            PaddingTokens = train.PaddingTokens + val.PaddingTokens,
        };
        return new TrainingDataset(train.Sequences, val.Sequences, report, padId);
    }

    /// <summary>Samples already parsed (e.g. built in code): encoded, split, packed.</summary>
    public static TrainingDataset FromSamples(IReadOnlyList<DataSample> samples, ITokenizer tokenizer, ChatTemplate? template,
        DatasetOptions? options = null, string source = "samples") =>
        FromSamples(samples, tokenizer, template, options ?? new DatasetOptions(), source,
            samples.Select(s => s.Line).Distinct().Count(), new RejectionLog((options ?? new DatasetOptions()).MaxRejectExamples), DataFileKind.Jsonl, null);

    private static TrainingDataset FromSamples(IReadOnlyList<DataSample> samples, ITokenizer tokenizer, ChatTemplate? template,
        DatasetOptions options, string source, int rowsRead, RejectionLog log, DataFileKind kind, string? columns)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options.Validate();
        if (options.Format is DataFormat.Auto or DataFormat.PlainText)
            options = options with { Format = samples.FirstOrDefault() switch
            {
                { Messages: not null } => DataFormat.Chat,
                { Instruction: not null } => DataFormat.Instruction,
                { Prompt: not null } => DataFormat.PromptCompletion,
                _ => DataFormat.JsonlText,
            } };
        int padId = PadOf(tokenizer);
        var encoder = new ExampleEncoder(tokenizer, template, options.FallbackChatTemplate);
        var examples = new List<TokenizedExample>(samples.Count);
        long tokensTotal = 0;
        foreach (var s in samples)
        {
            TokenizedExample ex;
            try { ex = encoder.Encode(s); }
            catch (Exception e) when (e is ChatTemplateException or InvalidDataException or InvalidOperationException)
            {
                log.Add(s.Line, ReasonTemplate, e.Message);
                continue;
            }
            int keep = Math.Min(ex.Length, options.SeqLen);
            bool any = false;
            for (int t = 1; t < keep && !any; t++) any = ex.Loss[t];
            if (!any)
            {
                log.Add(s.Line, ReasonNoTrainedToken, $"{ex.Length} tokens, first trained token beyond {options.SeqLen}");
                continue;
            }
            tokensTotal += ex.Length;
            examples.Add(ex);
        }

        // Validation rows: a seeded draw of distinct source lines.
        var lines = examples.Select(e => e.Line).Distinct().ToArray();
        int k = options.ValidationCount > 0 ? Math.Min(options.ValidationCount, Math.Max(0, lines.Length - 1))
            : options.ValidationFraction > 0 && lines.Length > 1 ? Math.Clamp((int)Math.Round(options.ValidationFraction * lines.Length), 1, lines.Length - 1) : 0;
        var order = (int[])lines.Clone();
        var rng = new Rng(options.Seed);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var valSet = new HashSet<int>(order.Take(k));
        var trainEx = examples.Where(e => !valSet.Contains(e.Line)).ToList();
        var valEx = examples.Where(e => valSet.Contains(e.Line)).ToList();
        var train = SequencePacker.Pack(trainEx, options.SeqLen, options.Pack, tokenizer.EosId, padId);
        var val = SequencePacker.Pack(valEx, options.SeqLen, options.Pack, tokenizer.EosId, padId);
        var report = new DataReport
        {
            Source = source, Format = options.Format, FileKind = kind, Columns = columns ?? Internal.DataLayouts.Mapping(options.Format),
            SeqLen = options.SeqLen, Packed = options.Pack,
            RowsRead = rowsRead, RowsUsed = lines.Length, RowsRejected = log.Rows, Rejections = log.ToList(),
            Samples = examples.Count, TokensTotal = tokensTotal,
            TruncatedRows = train.TruncatedRows + val.TruncatedRows, TruncatedTokens = train.TruncatedTokens + val.TruncatedTokens,
            TrainRows = lines.Length - k, ValidationRows = k,
            TrainSequences = train.Sequences.Count, ValidationSequences = val.Sequences.Count,
            PackedSequences = train.PackedSequences + val.PackedSequences,
            TrainedTokens = train.TrainedTokens, ValidationTrainedTokens = val.TrainedTokens,
            PaddingTokens = train.PaddingTokens + val.PaddingTokens,
        };
        return new TrainingDataset(train.Sequences, val.Sequences, report, padId);
    }

    /// <summary>The format of a file: plain text for text files (see <see cref="DataFiles.DetectKind"/>), otherwise the
    /// layout its columns name.</summary>
    /// <exception cref="InvalidDataException">binary, preference data, or no known columns.</exception>
    public static DataFormat DetectFile(string path)
    {
        var kind = DataFiles.DetectKind(path);
        return kind == DataFileKind.Text ? DataFormat.PlainText : DataFiles.Read(path, kind, DataFormat.Auto, new RejectionLog(0)).Format;
    }

    private static int PadOf(ITokenizer t) => t.PadId ?? t.EosId ?? 0;

    /// <summary>True when encoding "a" gives a first token whose bytes (not at the start) begin with a space.</summary>
    internal static bool AddsDummyPrefix(ITokenizer t)
    {
        int[] ids = t.Encode("a", parseSpecial: false);
        return ids.Length > 0 && t.TokenBytes(ids[0], atStart: false) is { Length: > 0 } bytes && bytes[0] == (byte)' ';
    }

    /// <summary>[BOS] + text + [EOS]. Tokenizers that put a dummy-prefix space in front of each encoded string
    /// (SentencePiece, llama2.c) get the text in one piece, so no spurious spaces appear inside it; the others get
    /// it in pieces of whole paragraphs (faster, and the same ids for byte-level BPE).</summary>
    private static int[] TokenizeStream(string text, ITokenizer tokenizer)
    {
        if (text.Length == 0) return [];
        var ids = new List<int>(text.Length / 3 + 2);
        if (tokenizer.AddBosByDefault && tokenizer.BosId is int b) ids.Add(b);
        if (AddsDummyPrefix(tokenizer)) ids.AddRange(tokenizer.Encode(text, parseSpecial: false));
        else
        {
            const int Target = 4096;
            int pos = 0;
            while (pos < text.Length)
            {
                int end = Math.Min(text.Length, pos + Target);
                if (end < text.Length)
                {
                    int para = text.LastIndexOf("\n\n", end, end - pos, StringComparison.Ordinal);
                    int nl = text.LastIndexOf('\n', end - 1, end - pos);
                    if (para > pos) end = para + 2;
                    else if (nl > pos) end = nl + 1;
                }
                ids.AddRange(tokenizer.Encode(text[pos..end], parseSpecial: false));
                pos = end;
            }
        }
        if (tokenizer.EosId is int e) ids.Add(e);
        return ids.ToArray();
    }
}
